#!/usr/bin/env python3
"""Sub-interpreter cycles: what an ended interpreter costs in RSS, with
islet and without, in one run.

    cycles.py ISLET|builtin PYTHON [--cycles N] [--warm W] [--kind legacy|isolated]
              [--imports a,b,...] [--together] [--settle S] [--bound RATIO]
              [--bound-final RATIO]

For each import (and all of them together; only that with --together) a
fresh PYTHON creates a sub-interpreter, imports the module in it and
destroys it, W times to warm up and then N times: own-GIL ones on 3.14+
with PEP 734's concurrent.interpreters (create, exec, close), the others
with the private _interpreters module.  It reports VmRSS growth per cycle
over the N cycles, after a gc.collect() and S seconds of rest (default 0.1), and
VmRSS at the end.  The rest is for islet, which gives an ended
interpreter's memory back on a thread of its own a few milliseconds after
the interpreter ends: read at once, RSS may still hold the last one's
(3.4 MiB with json on 3.14).  It runs once alone and once under `ISLET
run`; with `builtin` in ISLET's place, PYTHON is a CPython with islet
compiled in, run once with PYTHONMALLOC=pymalloc (alone) and once with
PYTHONMALLOC=islet.  --kind isolated makes own-GIL interpreters (3.12+); legacy ones
share the main interpreter's allocator state (all of 3.11's do).
--bound exits 1 when islet's growth on a row exceeds RATIO times CPython's
alone (plus 4 KiB of slack for the page granularity of RSS), --bound-final
when its RSS at the end does.

Growth per cycle favours an allocator that kept memory at the start: the
next interpreters fill it before RSS grows.  islet gives an ended
interpreter's free memory back (within milliseconds), so the RSS at the
end is the other half of the comparison.
"""
import argparse
import os
import subprocess
import sys

IMPORTS = ["json", "re", "datetime", "decimal", "collections", "asyncio", "xml.etree.ElementTree"]

CHILD = r"""
import gc, sys, time
try:
    from concurrent import interpreters as ci       # 3.14+: PEP 734's public API
except ImportError:
    ci = None
try:
    import _interpreters as xi                      # 3.13+
    def create(kind):
        return xi.create(kind)
    def run(i, src):
        xi.run_string(i, src)
except ImportError:
    import _xxsubinterpreters as xi                 # 3.11, 3.12
    def create(kind):
        return xi.create(isolated=kind == "isolated") if sys.version_info >= (3, 12) else xi.create()
    def run(i, src):
        xi.run_string(i, src)

def rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])

def cycle(kind, src):
    if ci and kind == "isolated":
        i = ci.create()
        i.exec(src)
        i.close()
        return
    i = create(kind)
    run(i, src)
    xi.destroy(i)

kind, mods, warm, n = sys.argv[1], sys.argv[2].split(","), int(sys.argv[3]), int(sys.argv[4])
settle = float(sys.argv[5])
src = "".join(f"import {m}\n" for m in mods)
for _ in range(warm):
    cycle(kind, src)
gc.collect()
time.sleep(settle)
before = rss_kib()
for _ in range(n):
    cycle(kind, src)
gc.collect()
time.sleep(settle)
after = rss_kib()
api = "concurrent.interpreters" if ci and kind == "isolated" else xi.__name__
print(api, (after - before) / n, after)
"""


def measure(cmd, alloc=None):
    """The API used, growth per cycle and RSS at the end, KiB."""
    env = dict(os.environ, PYTHONMALLOC=alloc) if alloc else None
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout.split()
    return out[-3], float(out[-2]), int(out[-1])


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("islet")
    ap.add_argument("python")
    ap.add_argument("--cycles", type=int, default=60)
    ap.add_argument("--warm", type=int, default=3)
    ap.add_argument("--kind", choices=["legacy", "isolated"], default="legacy")
    ap.add_argument("--imports", default=",".join(IMPORTS))
    ap.add_argument("--together", action="store_true")
    ap.add_argument("--settle", type=float, default=0.1)
    ap.add_argument("--bound", type=float)
    ap.add_argument("--bound-final", type=float)
    a = ap.parse_args(argv)
    mods = a.imports.split(",")
    rows = ([] if a.together else [[m] for m in mods]) + ([mods] if len(mods) > 1 or a.together else [])
    form = "compiled in, alone = PYTHONMALLOC=pymalloc" if a.islet == "builtin" else "islet run"
    print(f"{a.python} ({form}): {a.kind} sub-interpreters, {a.warm} warm-up cycles,"
          f" then {a.cycles}")
    print(f"{'':24} {'RSS growth per cycle, KiB':>26}   {'RSS at the end, MiB':>22}")
    print(f"{'import':24} {'alone':>8} {'islet':>8} {'ratio':>8}   {'alone':>6} {'islet':>6}"
          f" {'ratio':>8}")
    over = 0
    for row in rows:
        args = [a.kind, ",".join(row), str(a.warm), str(a.cycles), str(a.settle)]
        child = [a.python, "-c", CHILD] + args
        if a.islet == "builtin":
            api, alone, end_alone = measure(child, "pymalloc")
            _, mine, end_mine = measure(child, "islet")
        else:
            api, alone, end_alone = measure(child)
            _, mine, end_mine = measure([a.islet, "run", "--"] + child)
        name = row[0] if len(row) == 1 else "all together"
        ratio = f"{mine / alone:7.2f}x" if alone > 0 else "      - "
        bad = a.bound is not None and mine > a.bound * max(alone, 0) + 4
        bad |= a.bound_final is not None and end_mine > a.bound_final * end_alone
        over += bad
        print(f"{name:24} {alone:8.1f} {mine:8.1f} {ratio}   {end_alone / 1024:6.1f}"
              f" {end_mine / 1024:6.1f} {end_mine / end_alone:7.2f}x"
              f"{'  over the bound' if bad else ''}")
    print(f"interpreters made and ended with {api}")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
