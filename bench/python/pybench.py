#!/usr/bin/env python3
"""CPython on islet against CPython on its own pymalloc, in one run.

    pybench.py ISLET PYTHON [--runs N] [--scale S] [--strict]

Each workload of workloads.py runs as a fresh process, alternately on
pymalloc (plain PYTHON) and on islet (`ISLET run -- PYTHON`), N times each
(default 5).  The table gives median wall times, the medians' ratio, and
the ratio of the largest peak RSS (ru_maxrss of the child).  Targets:
islet's wall time at most 0.95x pymalloc's, its peak RSS at most 1.1x.
--strict exits 1 when a target is missed; without it the run only reports
(the CI smoke run uses --runs 1 --scale 1).

Anchors, in the same rounds: CPython on other allocators behind the same
hook, with PYTHONMALLOC=malloc (every domain calls malloc), and mimalloc or
jemalloc as the process malloc by LD_PRELOAD (glibc: no preload).  They
show what an allocator with no checks and no routing gets behind the hook;
their columns are wall time against pymalloc's.  A library that is not
installed is left out.
"""
import argparse
import ctypes.util
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
WORKLOADS = ["churn", "containers", "json", "regex", "simulation"]
TIME_TARGET, RSS_TARGET = 0.95, 1.10


def anchors():
    """name -> environment additions, for the allocators found."""
    found = {"glibc": {}}
    for lib in ("mimalloc", "jemalloc"):
        so = ctypes.util.find_library(lib)
        if so:
            found[lib] = {"LD_PRELOAD": so}
    return {k: dict(v, PYTHONMALLOC="malloc") for k, v in sorted(found.items())}


def measure(cmd, env=None):
    """Wall seconds and peak RSS (KiB) of one child."""
    t0 = time.perf_counter()
    pid = os.spawnve(os.P_NOWAIT, cmd[0], cmd, dict(os.environ, **(env or {})))
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    if status:
        sys.exit(f"pybench: {' '.join(cmd)} failed ({status})")
    return wall, usage.ru_maxrss


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("islet")
    ap.add_argument("python")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--scale", default="10")
    ap.add_argument("--strict", action="store_true")
    a = ap.parse_args(argv)
    islet, python, runs, scale, strict = a.islet, a.python, a.runs, a.scale, a.strict
    script = os.path.join(HERE, "workloads.py")
    others = anchors()
    print(f"CPython {python} on pymalloc and on islet, {runs} runs each, scale {scale}")
    print(f"anchors (PYTHONMALLOC=malloc): {', '.join(others)}")
    print(f"{'workload':12} {'pymalloc s':>10} {'islet s':>8} {'time':>6} {'pymalloc MiB':>12}"
          f" {'islet MiB':>9} {'RSS':>6}  met " + "".join(f" {k:>8}" for k in others))
    missed = 0
    for w in WORKLOADS:
        cmd = [python, script, w, scale]
        plain, mine, theirs = [], [], {k: [] for k in others}
        for _ in range(runs):  # alternate, so drift on the machine hits all alike
            plain.append(measure(cmd))
            mine.append(measure([islet, "run", "--"] + cmd))
            for k, env in others.items():
                theirs[k].append(measure(cmd, env)[0])
        tp = statistics.median(t for t, _ in plain)
        ti = statistics.median(t for t, _ in mine)
        rp, ri = max(r for _, r in plain), max(r for _, r in mine)
        ok = ti / tp <= TIME_TARGET and ri / rp <= RSS_TARGET
        missed += not ok
        print(f"{w:12} {tp:10.3f} {ti:8.3f} {ti / tp:5.2f}x {rp / 1024:12.1f} {ri / 1024:9.1f}"
              f" {ri / rp:5.2f}x  {'yes' if ok else 'no':3} " +
              "".join(f" {statistics.median(v) / tp:7.2f}x" for v in theirs.values()))
    print(f"targets: time <= {TIME_TARGET}x, peak RSS <= {RSS_TARGET}x pymalloc; "
          f"{len(WORKLOADS) - missed} of {len(WORKLOADS)} workloads meet both")
    return 1 if strict and missed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
