#!/usr/bin/env python3
"""The `islet` Python module under `islet run`, and the demo that uses it.

    islet_module.py ISLET PYTHON DEMO WORKDIR

The module reads and caps the calling interpreter's heap (README, "The
islet module").  What it promises, each checked in a process of its own:
its numbers move with the interpreter's allocations and not with raw
malloc's; set_limit refuses a negative limit, one under what is live and a
non-integer with the documented exceptions; under a limit a large
allocation raises MemoryError and set_limit(0) lifts it; every
sub-interpreter (own-GIL ones from 3.12) has its own numbers and limit; it
is absent where islet is off.  Last, the demo (tools/demo.py) on this
Python: exactly one interpreter hits its limit (on 3.14 and later, one
InterpreterPoolExecutor worker capped by its initializer).
"""
import json
import os
import subprocess
import sys

islet, python, demo, work = sys.argv[1:5]
os.makedirs(work, exist_ok=True)
failures = []


def check(ok, what):
    print(("ok: " if ok else "FAILED: ") + what)
    if not ok:
        failures.append(what)


def run(code, env=None, opts=()):
    r = subprocess.run([islet, "run", *opts, "--", python, "-c", code], env=env, text=True,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
    if r.returncode:
        print(r.stdout[-1500:], r.stderr[-1500:])
    return r


NUMBERS = """
import ctypes, islet
keys = ["interp", "allocs", "peak_bytes", "live_bytes", "live_blocks", "cross_frees", "limit",
        "limit_hits"]
a = islet.stats()
assert sorted(a) == sorted(keys) and all(type(a[k]) is int for k in keys), a
assert a["interp"] == 0 and a["allocs"] > 1000 and a["limit"] == 0, a
x = [bytearray(1 << 20) for _ in range(8)]
b = islet.stats()
assert b["live_bytes"] - a["live_bytes"] >= 8 << 20 and b["allocs"] > a["allocs"], (a, b)
assert b["peak_bytes"] >= b["live_bytes"], b
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
raw = libc.malloc(64 << 20)
c = islet.stats()
assert raw and c["live_bytes"] - b["live_bytes"] < 1 << 20, (b, c)
libc.free(ctypes.c_void_p(raw))
print("numbers ok")
"""

BAD_LIMITS = """
import islet
live = islet.stats()["live_bytes"]
for arg, exc in ((-1, ValueError), (1, ValueError), (live // 2, ValueError), ("64M", TypeError),
                 (1.5, TypeError), (None, TypeError), (2 ** 70, OverflowError)):
    try:
        islet.set_limit(arg)
    except exc:
        continue
    raise SystemExit(f"set_limit({arg!r}) did not raise {exc.__name__}")
try:
    islet.set_limit()
    raise SystemExit("set_limit() took no argument")
except TypeError:
    pass
assert islet.stats()["limit"] == 0
print("bad limits refused")
"""

LIMIT = """
import islet
islet.set_limit(islet.stats()["live_bytes"] + (16 << 20))
try:
    hog = bytearray(32 << 20)
    raise SystemExit("no MemoryError under the limit")
except MemoryError:
    pass
s = islet.stats()
assert s["limit_hits"] >= 1 and s["limit"] > 0 and s["peak_bytes"] <= s["limit"], s
small = [bytearray(1 << 20) for _ in range(4)]  # under it, allocations go on
islet.set_limit(0)
hog = bytearray(32 << 20)
assert islet.stats()["limit"] == 0
print("limit ok")
"""

# Each sub-interpreter imports its own copy and sees its own heap: its id, and
# a limit set in it that is not the main interpreter's.
SUBS = """
import islet, sys
if sys.version_info >= (3, 13):
    import _interpreters as interpreters
    run_string = interpreters.exec
else:
    import _xxsubinterpreters as interpreters
    run_string = interpreters.run_string
sub = interpreters.create()
run_string(sub, '''
import islet
s = islet.stats()
assert s["interp"] != 0, s
islet.set_limit(s["live_bytes"] + (8 << 20))
try:
    hog = bytearray(16 << 20)
    raise SystemExit("no MemoryError in the sub-interpreter")
except MemoryError:
    pass
assert islet.stats()["limit_hits"] >= 1
''')
interpreters.destroy(sub)
hog = bytearray(16 << 20)
s = islet.stats()
assert s["limit"] == 0 and s["limit_hits"] == 0, s
print("sub-interpreters ok")
"""

for name, code in (("numbers", NUMBERS), ("bad limits", BAD_LIMITS), ("limit", LIMIT),
                   ("sub-interpreters", SUBS)):
    r = run(code)
    check(r.returncode == 0, f"{name}: {r.stdout.strip() or r.stderr.strip()[-300:]}")

r = run("import islet", env=dict(os.environ, PYTHONMALLOC="malloc"))
check(r.returncode == 1 and "No module named 'islet'" in r.stderr,
      "islet off (PYTHONMALLOC): no islet module")
r = subprocess.run([python, "-c", "import islet"], stderr=subprocess.PIPE, text=True)
check(r.returncode == 1 and "No module named 'islet'" in r.stderr, "without islet run: no module")

path = os.path.join(work, "demo.json")
r = subprocess.run([islet, "run", "--json", path, "--", python, demo], text=True,
                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
print(r.stdout, end="")
check(r.returncode == 0, f"the demo runs (exit {r.returncode}) {r.stderr[-300:]}")
rows = json.load(open(path))
hit = [x for x in rows if x["limit_hits"]]
check(len(rows) >= 5 and all(x["ended"] for x in rows), f"{len(rows)} interpreters, all ended")
check(len(hit) == 1 and hit[0]["peak_bytes"] <= 64 << 20 and hit[0]["interp"] != 0,
      "the demo: one sub-interpreter hit its 64 MiB limit")
pool = "import sys; print(sys.version_info >= (3, 14))"
if subprocess.check_output([python, "-c", pool], text=True).strip() == "True":
    lines = [x for x in r.stdout.splitlines() if x.startswith("worker interpreter")]
    capped = [x for x in lines if "MemoryError" in x]
    check(len(lines) >= 2 and len(capped) == 1 and "done" not in capped[0],
          "the demo: MemoryError in one InterpreterPoolExecutor worker only")

print(f"{len(failures)} failed" if failures else "all ok")
sys.exit(1 if failures else 0)
