#!/usr/bin/env python3
"""A CPython with islet compiled in (tools/build-cpython.sh 3.X --with-islet).

    builtin.py PYTHON smoke
    builtin.py PYTHON cycles N MAX_KIB
    builtin.py PYTHON legacy-cycles N EXTRA_KIB

smoke: islet is the default allocator and PYTHONMALLOC chooses among islet,
islet_debug and CPython's own (-X dev too); the built-in islet module counts
the calling interpreter's allocations, and sys._debugmallocstats() prints
its heap (pymalloc's tables on pymalloc); with another allocator no
interpreter has a heap.  From 3.13, an own-GIL sub-interpreter has a heap
and a limit of its own (a MemoryError there only), a legacy one allocates
from the main interpreter's heap, as it shares pymalloc's state.  On 3.11
every interpreter shares that state, so one heap: a sub-interpreter's
allocations and limit are the main interpreter's.  A legacy interpreter's
end gives the heap's free memory back, and ISLET_PURGE_DELAY is read as
README says (a negative delay keeps it; a malformed one warns).

cycles (3.13): N own-GIL sub-interpreters created, run and destroyed one
after the other; past a warm-up, the process's RSS may grow by MAX_KIB at
most.  The negative control: N/10 cycles on pymalloc, on the same build,
must grow by more than 4 * MAX_KIB (CPython 3.13 keeps every such
interpreter's arenas).

legacy-cycles (3.11, whose sub-interpreters all share the main
interpreter's state): the same N cycles on islet and on pymalloc, on the
same build; RSS on islet may grow by EXTRA_KIB more than on pymalloc.  The
negative control: N/10 cycles on islet, each leaving 512 small blocks
(36 KiB) in the main interpreter, must break that bound.

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


def ask(code):
    return subprocess.check_output([python, "-c", code], text=True).strip()


version = tuple(int(x) for x in ask("import sys; print(*sys.version_info[:2])").split())

# Sub-interpreters from Python: 3.13's _interpreters (create() makes an
# own-GIL one) or 3.11's _xxsubinterpreters (legacy ones); run() raises when
# the code does.
if version >= (3, 13):
    SUB = """
import _interpreters as interpreters
def run(i, code):
    err = interpreters.exec(i, code)
    if err is not None:
        raise SystemExit(f"sub-interpreter {i}: {err.formatted}")
"""
else:
    SUB = """
import _xxsubinterpreters as interpreters
run = interpreters.run_string
"""


def run(code, malloc=None, opts=(), args=(), env_more=None):
    env = dict(os.environ)
    env.pop("PYTHONMALLOC", None)
    env.pop("PYTHONDEVMODE", None)
    env.pop("ISLET_PURGE_DELAY", None)
    env.pop("ISLET_HUGE_PAGES", None)
    if malloc:
        env["PYTHONMALLOC"] = malloc
    env.update(env_more or {})
    r = subprocess.run([python, *opts, "-c", code, *args], env=env, text=True,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600)
    if r.returncode:
        print(r.stdout[-1500:], r.stderr[-1500:])
    return r


NAME = """
try:
    from _testinternalcapi import pymem_getallocatorsname
except ImportError:  # 3.11's is _testcapi's
    from _testcapi import pymem_getallocatorsname
print(pymem_getallocatorsname())
"""

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

SUBS = SUB + """
import islet
main = islet.stats()
own = interpreters.create()  # isolated: own GIL, own obmalloc state
run(own, '''
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
run(legacy, '''
import islet
s = islet.stats()
x = [[i] for i in range(10000)]
assert islet.stats()["allocs"] - s["allocs"] >= 10000
''')
interpreters.destroy(legacy)
assert islet.stats()["allocs"] - before >= 10000, "the legacy interpreter had a heap of its own"
print("sub-interpreters ok")
"""

# 3.11: one heap for all; what a sub-interpreter allocates or caps is the
# main interpreter's too.
SUBS_SHARED = SUB + """
import islet
main = islet.stats()
sub = interpreters.create()
run(sub, '''
import islet
s = islet.stats()
assert s["interp"] != 0, s
x = [[i] for i in range(10000)]
assert islet.stats()["allocs"] - s["allocs"] >= 10000
islet.set_limit(s["live_bytes"] + (8 << 20))
''')
s = islet.stats()
assert s["allocs"] - main["allocs"] >= 10000, ("the sub-interpreter had a heap of its own", main, s)
assert s["limit"] > 0 and s["limit_hits"] == 0, s
try:
    hog = bytearray(16 << 20)
    raise SystemExit("no MemoryError in the main interpreter past the sub-interpreter's limit")
except MemoryError:
    pass
assert islet.stats()["limit_hits"] >= 1
islet.set_limit(0)
hog = bytearray(16 << 20)
interpreters.destroy(sub)
print("sub-interpreters ok")
"""

DEBUGMALLOCSTATS = "import sys; sys._debugmallocstats()"

NO_HEAP = SUB + """
import islet
def no_heap():
    try:
        islet.stats()
    except RuntimeError:
        return True
    return False
assert no_heap()
sub = interpreters.create()
run(sub, "import islet\\ntry:\\n islet.stats()\\nexcept RuntimeError:\\n pass\\n"
         "else:\\n raise SystemExit('a heap')")
interpreters.destroy(sub)
print("no heap")
"""

# Three legacy interpreters that import asyncio, one after the other; prints
# the RSS at the end, KiB.
LEGACY_END = SUB + """
try:
    legacy = interpreters.new_config("legacy")
    make = lambda: interpreters.create(legacy)
except AttributeError:  # 3.11: every sub-interpreter is a legacy one
    make = interpreters.create
for _ in range(3):
    i = make()
    run(i, "import asyncio")
    interpreters.destroy(i)
with open("/proc/self/statm") as f:
    print(int(f.read().split()[1]) * 4)
"""


def purge_delay():
    """README's ISLET_PURGE_DELAY: a legacy interpreter's end gives the
    heap's free memory back (about 6 MiB after asyncio), unless the delay is
    negative; a value that is not a whole number is the default, with a
    warning."""
    ends = {}
    for delay in (None, "-1", "soon"):
        r = run(LEGACY_END, env_more={"ISLET_PURGE_DELAY": delay} if delay else None)
        ends[delay] = int(r.stdout.split()[-1]) if r.returncode == 0 else None
        if delay == "soon":
            warned = "islet: ISLET_PURGE_DELAY=soon is not valid: using the default" in r.stderr
            check(warned, "ISLET_PURGE_DELAY=soon: a warning, and the default")
    ok = None not in ends.values()
    check(ok and ends["-1"] - ends[None] > 2048,
          f"ISLET_PURGE_DELAY=-1 keeps the ended interpreters' free memory: RSS {ends['-1']}"
          f" KiB against {ends[None]} by default")
    check(ok and abs(ends["soon"] - ends[None]) < 1024,
          f"ISLET_PURGE_DELAY=soon: RSS {ends['soon']} KiB, as the default's {ends[None]}")


# The VmFlags of the mapping holding a new list: hg (huge pages asked),
# nh (refused) or none.
MAPPING_FLAGS = """
x = []
for line in open("/proc/self/smaps"):
    lo_hi = line.split()[0].split("-")
    if len(lo_hi) == 2:
        holds = int(lo_hi[0], 16) <= id(x) < int(lo_hi[1], 16)
    elif holds and line.startswith("VmFlags:"):
        flags = line.split()
        print("hg" if "hg" in flags else "nh" if "nh" in flags else "none")
        break
"""


def huge_pages():
    """README's ISLET_HUGE_PAGES: the heaps take 4 KiB pages (nh) whatever
    the system's THP mode, 2 MiB ones (hg) when it is 1; anything else is 0,
    with a warning."""
    if not os.path.exists("/sys/kernel/mm/transparent_hugepage"):
        print("SKIPPED: ISLET_HUGE_PAGES: this kernel has no transparent huge pages")
        return
    for value, want in ((None, "nh"), ("1", "hg"), ("yes", "nh")):
        r = run(MAPPING_FLAGS, env_more={"ISLET_HUGE_PAGES": value} if value else None)
        warned = "islet: ISLET_HUGE_PAGES=yes is not valid: using 0" in r.stderr
        check(r.returncode == 0 and r.stdout.strip() == want and warned == (value == "yes"),
              f"ISLET_HUGE_PAGES={value}: a list's mapping has {want} ({r.stdout.strip()!r}, "
              f"warned: {warned})")


def smoke():
    r = run(NAME)
    check(r.returncode == 0 and r.stdout.strip() == "islet", f"the default: {r.stdout.strip()}")
    names = [("islet", "islet"), ("islet_debug", "islet_debug"), ("default", "islet"),
             ("debug", "islet_debug"), ("pymalloc", "pymalloc"),
             ("pymalloc_debug", "pymalloc_debug"), ("malloc", "malloc"),
             ("malloc_debug", "malloc_debug")]
    if version >= (3, 13):
        names.append(("mimalloc", "mimalloc"))
    for malloc, name in names:
        r = run(NAME, malloc)
        check(r.stdout.strip() == name, f"PYTHONMALLOC={malloc}: {r.stdout.strip()}")
    r = run(NAME, opts=("-X", "dev"))
    check(r.stdout.strip() == "islet_debug", f"-X dev: {r.stdout.strip()}")
    for malloc in (None, "islet_debug"):
        r = run(COUNTS, malloc)
        check(r.returncode == 0 and "islet heap" in r.stderr,
              f"{malloc or 'the default'}: islet counts the allocations; _debugmallocstats: "
              + (r.stderr.splitlines() or ["nothing"])[0])
    r = run(DEBUGMALLOCSTATS, "pymalloc")
    check(r.returncode == 0 and "Small block threshold" in r.stderr and "islet" not in r.stderr,
          "pymalloc: _debugmallocstats prints pymalloc's tables: "
          + (r.stderr.splitlines() or ["nothing"])[0])
    r = run(SUBS if version >= (3, 13) else SUBS_SHARED)
    check(r.returncode == 0, f"sub-interpreters: {r.stdout.strip() or r.stderr[-300:]}")
    for malloc in ("pymalloc", "malloc"):
        r = run(NO_HEAP, malloc)
        check(r.returncode == 0, f"PYTHONMALLOC={malloc}: no interpreter has a heap")
    purge_delay()
    huge_pages()


# N cycles of a sub-interpreter (3.13: own-GIL; 3.11: legacy), each followed
# by LEAK small blocks kept in the main interpreter; prints the RSS growth
# in KiB.
CYCLES = SUB + """
import sys
n, leak = int(sys.argv[1]), int(sys.argv[2])
code = "import json; s = json.dumps({str(i): [i] * 8 for i in range(500)})"
kept = []
def rss_kib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4
def cycle():
    x = interpreters.create()
    run(x, code)
    interpreters.destroy(x)
for _ in range(50):  # warm-up: the main interpreter's caches, islet's quarantine
    cycle()
before = rss_kib()
for _ in range(n):
    cycle()
    if leak:
        kept.append([bytes(16) for _ in range(leak)])
print(rss_kib() - before)
"""


def grew(n, malloc, leak=0):
    """RSS growth (KiB) over n cycles, or None when the run failed."""
    r = run(CYCLES, malloc, args=(str(n), str(leak)))
    return int(r.stdout.split()[-1]) if r.returncode == 0 else None


def cycles(n, max_kib):
    g = grew(n, None)
    check(g is not None and g <= max_kib,
          f"islet: {n} own-GIL interpreters: RSS grew by {g} KiB (bound {max_kib} KiB)")
    g = grew(n // 10, "pymalloc")
    check(g is not None and g > 4 * max_kib, f"pymalloc, the control: {n // 10} own-GIL"
          f" interpreters: RSS grew by {g} KiB, must break {4 * max_kib} KiB")


def legacy_cycles(n, extra_kib):
    base = grew(n, "pymalloc")
    check(base is not None, f"pymalloc: {n} legacy interpreters: RSS grew by {base} KiB")
    if base is None:
        return
    bound = base + extra_kib
    g = grew(n, None)
    check(g is not None and g <= bound,
          f"islet: {n} legacy interpreters: RSS grew by {g} KiB (bound {bound} KiB)")
    g = grew(n // 10, None, 512)
    check(g is not None and g > bound, f"islet, the control: {n // 10} legacy interpreters keeping"
          f" 36 KiB each: RSS grew by {g} KiB, must break {bound} KiB")


if sys.argv[2] == "smoke":
    smoke()
elif sys.argv[2] == "cycles":
    cycles(int(sys.argv[3]), int(sys.argv[4]))
else:
    legacy_cycles(int(sys.argv[3]), int(sys.argv[4]))
print(f"{len(failures)} failed" if failures else "all ok")
sys.exit(1 if failures else 0)
