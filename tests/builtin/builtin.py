#!/usr/bin/env python3
"""A CPython with islet compiled in (tools/build-cpython.sh 3.X --with-islet).

    builtin.py PYTHON smoke
    builtin.py PYTHON cycles N MAX_KIB

smoke: islet is the default allocator and PYTHONMALLOC chooses among islet,
islet_debug and CPython's own (-X dev too); the built-in islet module counts
the calling interpreter's allocations, and sys._debugmallocstats() prints
its heap; an own-GIL sub-interpreter has a heap and a limit of its own (a
MemoryError there only), a legacy one allocates from the main interpreter's
heap, as it shares pymalloc's state; with another allocator no interpreter
has a heap.

cycles: N own-GIL sub-interpreters created, run and destroyed one after the
other; past a warm-up, the process's RSS may grow by MAX_KIB at most.  The
negative control: N/10 cycles on pymalloc, on the same build, must grow by
more than 4 * MAX_KIB (CPython 3.13 keeps every such interpreter's arenas).
Each check runs in a process of its own.
"""
import os
import subprocess
import sys

python = sys.argv[1]
failures = []


def check(ok, what):
    print(("ok: " if ok else "FAILED: ") + what, flush=True)
    if not ok:
        failures.append(what)


def run(code, malloc=None, opts=()):
    env = dict(os.environ)
    env.pop("PYTHONMALLOC", None)
    env.pop("PYTHONDEVMODE", None)
    if malloc:
        env["PYTHONMALLOC"] = malloc
    r = subprocess.run([python, *opts, "-c", code], env=env, text=True, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=600)
    if r.returncode:
        print(r.stdout[-1500:], r.stderr[-1500:])
    return r


NAME = "import _testinternalcapi; print(_testinternalcapi.pymem_getallocatorsname())"

COUNTS = """
import islet, sys
a = islet.stats()
assert a["interp"] == 0 and a["allocs"] > 1000 and a["live_blocks"] > 1000, a
x = [[i] for i in range(10000)]
b = islet.stats()
assert b["allocs"] - a["allocs"] >= 10000 and b["live_blocks"] - a["live_blocks"] >= 10000, (a, b)
assert sys.getallocatedblocks() >= b["live_blocks"], sys.getallocatedblocks()
sys._debugmallocstats()
"""

SUBS = """
import _interpreters as interpreters, islet
main = islet.stats()
own = interpreters.create()  # isolated: own GIL, own obmalloc state
interpreters.exec(own, '''
import islet
s = islet.stats()
assert s["interp"] != 0 and s["allocs"] < 200000, s
islet.set_limit(s["live_bytes"] + (8 << 20))
try:
    hog = bytearray(16 << 20)
    raise SystemExit("no MemoryError in the own-GIL interpreter")
except MemoryError:
    pass
assert islet.stats()["limit_hits"] >= 1
''')
interpreters.destroy(own)
hog = bytearray(16 << 20)  # the main interpreter's heap has no limit
assert islet.stats()["limit_hits"] == 0
legacy = interpreters.create(interpreters.new_config("legacy"))
before = islet.stats()["allocs"]
interpreters.exec(legacy, '''
import islet
s = islet.stats()
x = [[i] for i in range(10000)]
assert islet.stats()["allocs"] - s["allocs"] >= 10000
''')
interpreters.destroy(legacy)
assert islet.stats()["allocs"] - before >= 10000, "the legacy interpreter had a heap of its own"
print("sub-interpreters ok")
"""

NO_HEAP = """
import _interpreters as interpreters, islet
def no_heap():
    try:
        islet.stats()
    except RuntimeError:
        return True
    return False
assert no_heap()
sub = interpreters.create()
interpreters.exec(sub, "import islet\\ntry:\\n islet.stats()\\nexcept RuntimeError:\\n pass\\n"
                       "else:\\n raise SystemExit('a heap')")
interpreters.destroy(sub)
print("no heap")
"""


def smoke():
    r = run(NAME)
    check(r.returncode == 0 and r.stdout.strip() == "islet", f"the default: {r.stdout.strip()}")
    for malloc, name in (("islet", "islet"), ("islet_debug", "islet_debug"),
                         ("debug", "islet_debug"), ("pymalloc", "pymalloc"),
                         ("mimalloc", "mimalloc"), ("malloc", "malloc")):
        r = run(NAME, malloc)
        check(r.stdout.strip() == name, f"PYTHONMALLOC={malloc}: {r.stdout.strip()}")
    r = run(NAME, opts=("-X", "dev"))
    check(r.stdout.strip() == "islet_debug", f"-X dev: {r.stdout.strip()}")
    for malloc in (None, "islet_debug"):
        r = run(COUNTS, malloc)
        check(r.returncode == 0 and "islet heap" in r.stderr,
              f"{malloc or 'the default'}: islet counts the allocations; _debugmallocstats: "
              + (r.stderr.splitlines() or ["nothing"])[0])
    r = run(SUBS)
    check(r.returncode == 0, f"sub-interpreters: {r.stdout.strip() or r.stderr[-300:]}")
    for malloc in ("pymalloc", "malloc"):
        r = run(NO_HEAP, malloc)
        check(r.returncode == 0, f"PYTHONMALLOC={malloc}: no interpreter has a heap")


CYCLES = """
import _interpreters as interpreters, sys
n, max_kib = int(sys.argv[1]), int(sys.argv[2])
code = "import json; s = json.dumps({str(i): [i] * 8 for i in range(500)})"
def rss_kib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4
def cycle():
    x = interpreters.create()
    interpreters.exec(x, code)
    interpreters.destroy(x)
for _ in range(50):  # warm-up: the main interpreter's caches, islet's quarantine
    cycle()
before = rss_kib()
for _ in range(n):
    cycle()
grew = rss_kib() - before
print(f"{n} own-GIL interpreters: RSS grew by {grew} KiB (bound {max_kib} KiB)")
sys.exit(grew > max_kib)
"""


def cycles(n, max_kib):
    env = dict(os.environ)
    env.pop("PYTHONMALLOC", None)
    r = subprocess.run([python, "-c", CYCLES, n, max_kib], env=env, text=True, timeout=1200,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    check(r.returncode == 0, "islet: " + r.stdout.strip()[-500:])
    control = str(int(max_kib) * 4)
    r = subprocess.run([python, "-c", CYCLES, str(int(n) // 10), control],
                       env=dict(env, PYTHONMALLOC="pymalloc"), text=True, timeout=1200,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    check(r.returncode == 1, "pymalloc, the control, must break the bound: " + r.stdout.strip()[-500:])


if sys.argv[2] == "smoke":
    smoke()
else:
    cycles(sys.argv[3], sys.argv[4])
print(f"{len(failures)} failed" if failures else "all ok")
sys.exit(1 if failures else 0)
