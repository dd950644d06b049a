#!/usr/bin/env python3
"""Instructions, not seconds: the workloads of workloads.py under callgrind,
on pymalloc, on islet and on anchors, for a shared machine where wall time
is noise.

    pycount.py ISLET PYTHON [--scale S] [--jobs J] [--out DIR]
               [--anchor NAME:VAR=VALUE[,VAR=VALUE...]]... [--workloads a,b,...]

Each workload runs once under `valgrind --tool=callgrind` per allocator:
plain PYTHON (pymalloc), `ISLET run -- valgrind ... PYTHON` (islet) and
each --anchor (pybench.py's syntax, e.g. mimalloc:PYTHONMALLOC=mimalloc),
at scale S (default 1) and at scale 0.  A workload is a Python function,
which callgrind cannot toggle on, so the counts are whole processes: scale
0 is start-up, the imports and the workload's set-up (json's document,
simulation's bodies) with no iteration, and the difference is the
workload's loop alone.  Both are reported, with islet's ratio to pymalloc
and to each anchor.  PYTHONHASHSEED=0 makes the runs repeatable.  Count
with a shim built with -Dvalgrind=disabled: otherwise islet makes Valgrind
client requests on every call under Valgrind.  --jobs (default 2) runs that
many at once; the count does not depend on it.  --out keeps the
callgrind.out files (for callgrind_annotate), named WORKLOAD-ALLOC-SCALE.
"""
import argparse
import concurrent.futures
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from pybench import WORKLOADS, anchor  # noqa: E402


def count(cmd, env, out):
    """Instructions of one callgrind run of cmd (the total in its file)."""
    subprocess.run(cmd, env=dict(os.environ, PYTHONHASHSEED="0", **env), check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(out) as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    sys.exit(f"pycount: no total in {out}")


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("islet")
    ap.add_argument("python")
    ap.add_argument("--scale", default="1")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out")
    ap.add_argument("--anchor", type=anchor, action="append", default=[])
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    a = ap.parse_args(argv)
    out = a.out or tempfile.mkdtemp(prefix="pycount-")
    os.makedirs(out, exist_ok=True)
    script = os.path.join(HERE, "workloads.py")
    allocs = {"pymalloc": ([], {}), "islet": ([a.islet, "run", "--"], {})}
    allocs.update((k, ([], env)) for k, env in a.anchor)
    workloads = a.workloads.split(",")
    runs = {}
    with concurrent.futures.ThreadPoolExecutor(a.jobs) as pool:
        for w in workloads:
            for k, (pre, env) in allocs.items():
                for scale in (a.scale, "0"):
                    f = os.path.join(out, f"{w}-{k}-{scale}")
                    cmd = pre + ["valgrind", "--tool=callgrind", f"--callgrind-out-file={f}",
                                 a.python, script, w, scale]
                    runs[w, k, scale] = pool.submit(count, cmd, env, f)
    n = {key: r.result() for key, r in runs.items()}
    others = list(allocs)[2:]
    print(f"{a.python}: instructions (M) under callgrind, scale {a.scale} and 0; files in {out}")
    print(f"{'workload':12} {'':6} {'pymalloc':>9} {'islet':>9} {'islet/py':>9}" +
          "".join(f" {k:>9} {k[:5] + '/py':>9} {'islet/' + k[:3]:>9}" for k in others))
    for w in workloads:
        for part in ("loop", "whole", "start"):
            def m(k):
                whole, start = n[w, k, a.scale], n[w, k, "0"]
                return {"loop": whole - start, "whole": whole, "start": start}[part]
            py, isl = m("pymalloc"), m("islet")
            print(f"{w if part == 'loop' else '':12} {part:6} {py / 1e6:9.1f} {isl / 1e6:9.1f}"
                  f" {isl / py:8.3f}x" +
                  "".join(f" {m(k) / 1e6:9.1f} {m(k) / py:8.3f}x {isl / m(k):8.3f}x"
                          for k in others))
    print("loop: scale S less scale 0 (the workload's iterations); whole: the process at scale S;"
          " start: at scale 0")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
