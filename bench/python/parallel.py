#!/usr/bin/env python3
"""Own-GIL interpreters (PEP 684) in parallel against the same work in
sequence, on islet and on CPython alone, with CPython 3.14+'s
concurrent.interpreters (PEP 734): does a heap per interpreter let them
scale, and what does islet cost them?

    parallel.py ISLET PYTHON [--counts 2,4] [--rounds R] [--reps K] [--iters I]

Each round runs, for each count N, one fresh process alone and one under
`ISLET run` (in turn, so drift on a shared machine hits both alike).  The
process makes N interpreters with concurrent.interpreters.create(), warms
them up (each runs the work once), then K times (default 3) runs the work
in each of them one after another, and in all of them at once: one thread
per interpreter calling Interpreter.exec.  The work is the dict, tuple,
list and str churn of tests/cpython/embed.c's owngil mode, I iterations
(default 400,000).  Under islet each interpreter then checks, with the
islet module, that it ran on its own heap.

Reported per N: the median over the rounds of sequence / parallel (the
speed-up, bounded by min(N, cores)), its range, the CPUs the parallel
phase got (process CPU time over wall time: below min(N, cores) when other
work on the machine took cores), the CPU time of the parallel phase over
the sequence's (1.0 when running together costs nothing: no lock, no
shared cache line; this one holds on a loaded machine, where the speed-up
does not), and islet's wall time against CPython alone's in the same
round, in sequence and in parallel.  Each round's line gives the machine's
load average and the CPUs each phase got.
"""
import argparse
import os
import statistics
import subprocess
import sys

CHILD = r"""
import sys, threading, time
from concurrent import interpreters

n, reps, iters, check = (int(x) for x in sys.argv[1:5])
work = (f"d = {{}}\n"
        f"for i in range({iters}):\n"
        f"    d[i % 4096] = (str(i), [i, i * 0.5], {{'k': i}})\n"
        f"assert len(d) == 4096\n")
interps = [interpreters.create() for _ in range(n)]

cpu = 0.0
def together(group):
    global cpu
    threads = [threading.Thread(target=i.exec, args=(work,)) for i in group]
    t0, c0 = time.perf_counter(), time.process_time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cpu += time.process_time() - c0
    return time.perf_counter() - t0

together(interps)  # warm-up: first pages, the code's first run
seq = par = seq_cpu = par_cpu = 0.0
for _ in range(reps):
    cpu = 0.0
    seq += sum(together([i]) for i in interps)
    seq_cpu += cpu
    cpu = 0.0
    par += together(interps)
    par_cpu += cpu
if check:  # each on a heap of its own, which did the work
    q = interpreters.create_queue()
    for i in interps:
        i.prepare_main(q=q)
        i.exec("import islet\ns = islet.stats()\nq.put((s['interp'], s['allocs']))")
    got = [q.get() for _ in interps]
    if len({h for h, _ in got}) != n or min(a for _, a in got) < iters:
        sys.exit(f"interpreters not on heaps of their own: {got}")
for i in interps:
    i.close()
print(seq, par, seq_cpu, par_cpu)
"""


def run(cmd):
    """Wall seconds in sequence and in parallel, then CPU seconds of each, from one child."""
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.split()
    return tuple(float(x) for x in out[-4:])


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("islet")
    ap.add_argument("python")
    ap.add_argument("--counts", default="2,4")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--iters", type=int, default=400_000)
    a = ap.parse_args(argv)
    counts = [int(c) for c in a.counts.split(",")]
    res = {(n, k): [] for n in counts for k in ("alone", "islet")}
    for r in range(a.rounds):
        for n in counts:
            args = [str(n), str(a.reps), str(a.iters)]
            res[n, "alone"].append(run([a.python, "-c", CHILD] + args + ["0"]))
            res[n, "islet"].append(run([a.islet, "run", "--", a.python, "-c", CHILD] + args + ["1"]))
            print(f"round {r + 1}, {n} interpreters, load {os.getloadavg()[0]:.2f}: " + ", ".join(
                f"{k} {res[n, k][-1][0]:.2f} s in sequence on {res[n, k][-1][2] / res[n, k][-1][0]:.2f}"
                f" CPUs, {res[n, k][-1][1]:.2f} s in parallel on"
                f" {res[n, k][-1][3] / res[n, k][-1][1]:.2f} CPUs"
                for k in ("alone", "islet")), flush=True)
    print(f"{a.python}: own-GIL interpreters, {a.reps} x {a.iters} iterations each, "
          f"{a.rounds} rounds, {os.cpu_count()} CPUs")
    print(f"{'N':>3} {'':6} {'seq s':>7} {'par s':>7} {'seq/par':>8} {'range':>12}"
          f" {'CPUs':>5} {'CPU s par/seq':>14} {'vs alone, seq':>14} {'par':>6}")
    for n in counts:
        for k in ("alone", "islet"):
            v = res[n, k]
            sp = [x[0] / x[1] for x in v]
            vs = ""
            if k == "islet":
                base = res[n, "alone"]
                vs = (f" {statistics.median(m[0] / b[0] for m, b in zip(v, base)):13.2f}x"
                      f" {statistics.median(m[1] / b[1] for m, b in zip(v, base)):5.2f}x")
            print(f"{n:3} {k:6} {statistics.median(x[0] for x in v):7.2f}"
                  f" {statistics.median(x[1] for x in v):7.2f} {statistics.median(sp):7.2f}x"
                  f" {min(sp):5.2f}-{max(sp):4.2f}x"
                  f" {statistics.median(x[3] / x[1] for x in v):5.2f}"
                  f" {statistics.median(x[3] / x[2] for x in v):13.2f}x{vs}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
