#!/usr/bin/env python3
"""CPython on islet against CPython on its own pymalloc, in one run.

    pybench.py ISLET PYTHON [--runs N] [--scale S] [--strict]
               [--anchor NAME:VAR=VALUE[,VAR=VALUE...]]... [--no-preload-anchors]

Each workload of workloads.py runs as a fresh process, alternately on
pymalloc (plain PYTHON) and on islet (`ISLET run -- PYTHON`), N times each
(default 5).  The table gives median wall times, the median of the
per-round ratios (islet's time over pymalloc's in the same round, so drift
on a shared machine cancels), and the ratio of the largest peak RSS
(ru_maxrss of the child).  Targets: islet's wall time at most 0.95x
pymalloc's, its peak RSS at most 1.1x.  --strict exits 1 when a target is
missed; without it the run only reports (the CI smoke run uses --runs 1
--scale 1).

Anchors, in the same rounds: CPython on other allocators behind the same
hook, with PYTHONMALLOC=malloc (every domain calls malloc), and mimalloc or
jemalloc as the process malloc by LD_PRELOAD (glibc: no preload).  They
show what an allocator with no checks and no routing gets behind the hook.
A library that is not installed is left out; --no-preload-anchors leaves
all three out.  --anchor adds one of any kind, named NAME, run with the
given environment, such as 3.13+'s compiled-in mimalloc:
`--anchor mimalloc:PYTHONMALLOC=mimalloc`.  Each anchor gets three columns:
its time and its peak RSS against pymalloc's, and islet's time against its
own (each time ratio a median of per-round ratios).
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


def preload_anchors():
    """name -> environment additions, for the allocators found."""
    found = {"glibc": {}}
    for lib in ("mimalloc", "jemalloc"):
        so = ctypes.util.find_library(lib)
        if so:
            found[lib] = {"LD_PRELOAD": so}
    return {k: dict(v, PYTHONMALLOC="malloc") for k, v in sorted(found.items())}


def anchor(spec):
    """NAME:VAR=VALUE[,VAR=VALUE...] -> (name, environment additions)."""
    name, _, env = spec.partition(":")
    pairs = [kv.partition("=") for kv in env.split(",") if kv]
    if not name or not pairs or any(not k or not eq for k, eq, _ in pairs):
        raise argparse.ArgumentTypeError(f"{spec!r}: want NAME:VAR=VALUE[,VAR=VALUE...]")
    return name, {k: v for k, _, v in pairs}


def ratio(a, b):
    """The median of the per-round ratios a[i] / b[i]."""
    return statistics.median(x / y for x, y in zip(a, b))


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
    ap.add_argument("--anchor", type=anchor, action="append", default=[])
    ap.add_argument("--no-preload-anchors", action="store_true")
    a = ap.parse_args(argv)
    islet, python, runs, scale, strict = a.islet, a.python, a.runs, a.scale, a.strict
    script = os.path.join(HERE, "workloads.py")
    others = {} if a.no_preload_anchors else preload_anchors()
    others.update(a.anchor)
    print(f"CPython {python} on pymalloc and on islet, {runs} runs each, scale {scale}")
    for k, env in others.items():
        print(f"anchor {k}: " + " ".join(f"{var}={val}" for var, val in env.items()))
    print(f"{'workload':12} {'pymalloc s':>10} {'islet s':>8} {'time':>6} {'pymalloc MiB':>12}"
          f" {'islet MiB':>9} {'RSS':>6}  met " +
          "".join(f" {k + ' t':>10} {k + ' RSS':>10} {'islet/' + k:>10}" for k in others))
    missed = 0
    for w in WORKLOADS:
        cmd = [python, script, w, scale]
        plain, mine, theirs = [], [], {k: [] for k in others}
        for _ in range(runs):  # alternate, so drift on the machine hits all alike
            plain.append(measure(cmd))
            mine.append(measure([islet, "run", "--"] + cmd))
            for k, env in others.items():
                theirs[k].append(measure(cmd, env))
        tp, ti = ([t for t, _ in v] for v in (plain, mine))
        rp, ri = max(r for _, r in plain), max(r for _, r in mine)
        time_ratio = ratio(ti, tp)
        ok = time_ratio <= TIME_TARGET and ri / rp <= RSS_TARGET
        missed += not ok
        cols = ""
        for v in theirs.values():
            ta = [t for t, _ in v]
            cols += (f" {ratio(ta, tp):9.2f}x {max(r for _, r in v) / rp:9.2f}x"
                     f" {ratio(ti, ta):9.2f}x")
        print(f"{w:12} {statistics.median(tp):10.3f} {statistics.median(ti):8.3f}"
              f" {time_ratio:5.2f}x {rp / 1024:12.1f} {ri / 1024:9.1f}"
              f" {ri / rp:5.2f}x  {'yes' if ok else 'no':3} " + cols)
    print(f"targets: time <= {TIME_TARGET}x, peak RSS <= {RSS_TARGET}x pymalloc; "
          f"{len(WORKLOADS) - missed} of {len(WORKLOADS)} workloads meet both")
    return 1 if strict and missed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
