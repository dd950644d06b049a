#!/usr/bin/env python3
"""CPython's own allocators on one CPython build, in one run.

    allocators.py PYTHON [--alloc islet,pymalloc,mimalloc] [--rounds N]
                         [--scale S] [--only W,...] [--owngil N]

    py=$(tools/build-cpython.sh 3.13 --with-islet)/bin/python3.13
    python3 bench/python/allocators.py $py --rounds 30             # 2-5 min
    python3 bench/python/allocators.py $py --only '' --owngil 20   # 3-7 min
    python3 bench/python/allocators.py $py --alloc islet+ISLET_HUGE_PAGES=1,islet,pymalloc

Why: a CPython with islet compiled in (tools/build-cpython.sh 3.13
--with-islet) has islet, pymalloc and mimalloc behind the same calls, one
PYTHONMALLOC value apart.  pybench.py compares `islet run` with a plain
python; this compares PYTHONMALLOC values on one binary, so no preload and no
other build gets in the way.  The first --alloc value is measured against
each of the others (default: islet against pymalloc and mimalloc); a value
may carry environment settings after a '+', so that one allocator runs
with and without one (islet+ISLET_HUGE_PAGES=1).

Each round runs every workload of workloads.py once per allocator, each as a
fresh process, the allocators in an order that rotates from round to round.
Ratios are medians of the per-round ratios (a round's allocators ran within
seconds of each other, so drift on a shared machine hits them alike): wall
time, and CPU time (user + system of the child), which a busy machine
disturbs less.  Peak RSS is the largest ru_maxrss of each allocator's runs.
Prefer many short rounds (--scale 1, the default) on a busy machine.

--owngil N: N rounds of two own-GIL sub-interpreters (_interpreters, 3.13+)
running tests/cpython/embed.c's churn (str, list, dict) on two threads, in
sequence and then in parallel, 5 times each in one process per allocator;
the figure is the shortest time in sequence over the shortest in parallel
(the least disturbed of each, as two threads only run in parallel when
nothing else wants the cores), compared per round with pymalloc's (CPython
alone).  Beside it, the
process's CPU time in parallel over in sequence, which a busy machine
disturbs less: above 1.0x, the two interpreters' threads slow each other
(shared cache lines, locks, memory bandwidth).

Targets (issue 20, for islet compiled into CPython 3.13): time at most 1.0x
pymalloc and 1.05x mimalloc; peak RSS at most 1.05x pymalloc; own-GIL
speed-up at least pymalloc's.  The run only reports; it never fails on them.
"""
import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
WORKLOADS = ["churn", "containers", "json", "regex", "simulation"]
TIME_TARGETS = {"pymalloc": 1.0, "mimalloc": 1.05}
RSS_TARGET = ("pymalloc", 1.05)

OWNGIL = r"""
import _interpreters as xi, threading, time
SRC = '''
d = {}
for i in range(400000):
    d[i % 4096] = (str(i), [i, i * 0.5], {'k': i})
assert len(d) == 4096
'''
def run(i):
    err = xi.exec(i, SRC)
    if err is not None:
        raise SystemExit(f"sub-interpreter {i}: {err}")
def work(ids, at_once):
    t0, c0 = time.perf_counter(), time.process_time()
    for k in range(0, len(ids), at_once):
        ts = [threading.Thread(target=run, args=(i,)) for i in ids[k:k + at_once]]
        for t in ts: t.start()
        for t in ts: t.join()
    return time.perf_counter() - t0, time.process_time() - c0
ids = [xi.create("isolated") for _ in range(2)]
work(ids, 2)  # warm-up: imports, first pages
seq, par = [], []
for _ in range(5):
    seq.append(work(ids, 1))
    par.append(work(ids, 2))
for i in ids:
    xi.destroy(i)
# the least disturbed wall time of each; CPU time of all in parallel over all in sequence
print(min(seq)[0], min(par)[0], sum(c for _, c in par) / sum(c for _, c in seq))
"""


def measure(cmd, alloc):
    """Wall and CPU seconds, peak RSS (KiB) and stdout of one child.  alloc
    is a PYTHONMALLOC value, with environment settings after it, each after
    a '+' (islet+ISLET_HUGE_PAGES=1)."""
    r, w = os.pipe()
    name, *settings = alloc.split("+")
    env = dict(os.environ, PYTHONMALLOC=name, **dict(s.split("=", 1) for s in settings))
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        os.dup2(w, 1)
        try:
            os.execve(cmd[0], cmd, env)
        finally:
            os._exit(127)
    os.close(w)
    with os.fdopen(r) as f:
        out = f.read()
    _, status, ru = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    if status:
        sys.exit(f"allocators.py: PYTHONMALLOC={alloc} {' '.join(cmd)} failed ({status})")
    return wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss, out


def rotated(allocs, r):
    k = r % len(allocs)
    return allocs[k:] + allocs[:k]


def med(xs):
    return statistics.median(xs)


def workloads(a):
    mine, others = a.alloc[0], a.alloc[1:]
    script = os.path.join(HERE, "workloads.py")
    runs = {(w, al): [] for w in a.only for al in a.alloc}
    for r in range(a.rounds):
        for w in a.only:
            for al in rotated(a.alloc, r):
                runs[w, al].append(measure([a.python, script, w, a.scale], al)[:3])
    print(f"{a.rounds} rounds, scale {a.scale}; per workload: median wall s, then {mine} over each"
          f" other: wall, CPU (medians of per-round ratios), peak RSS (largest runs)")
    head = f"{'workload':11}" + "".join(f" {al + ' s':>12}" for al in a.alloc)
    for o in others:
        head += f" | {'/' + o:>10} {'cpu':>6} {'RSS':>6}"
    print(head + " | met")
    missed = 0
    for w in a.only:
        line = f"{w:11}" + "".join(f" {med(t for t, _, _ in runs[w, al]):12.3f}" for al in a.alloc)
        ok = True
        for o in others:
            m, t = runs[w, mine], runs[w, o]
            wall = med(x[0] / y[0] for x, y in zip(m, t))
            cpu = med(x[1] / y[1] for x, y in zip(m, t))
            rss = max(x[2] for x in m) / max(y[2] for y in t)
            if o in TIME_TARGETS:
                ok &= wall <= TIME_TARGETS[o]
            if o == RSS_TARGET[0]:
                ok &= rss <= RSS_TARGET[1]
            line += f" | {wall:9.3f}x {cpu:5.3f}x {rss:5.3f}x"
        missed += not ok
        print(line + f" | {'yes' if ok else 'no'}")
    for al in a.alloc:
        print(f"peak RSS MiB, {al}: " + ", ".join(
            f"{w} {max(x[2] for x in runs[w, al]) / 1024:.1f}" for w in a.only))
    print("targets: wall time <= " + ", ".join(f"{v}x {k}" for k, v in TIME_TARGETS.items()) +
          f", peak RSS <= {RSS_TARGET[1]}x {RSS_TARGET[0]}; "
          f"{len(a.only) - missed} of {len(a.only)} workloads meet them")


def owngil(a):
    mine = a.alloc[0]
    base = "pymalloc" if "pymalloc" in a.alloc[1:] else a.alloc[1]
    speed, cpu = {al: [] for al in a.alloc}, {al: [] for al in a.alloc}
    for r in range(a.owngil):
        for al in rotated(a.alloc, r):
            seq, par, c = map(float, measure([a.python, "-c", OWNGIL], al)[3].split())
            speed[al].append(seq / par)
            cpu[al].append(c)
    print(f"own GIL: 2 sub-interpreters, time in sequence / in parallel, {a.owngil} rounds;"
          f" CPU time in parallel / in sequence (1.0: the threads do not slow each other)")
    for al in a.alloc:
        s = speed[al]
        print(f"{al:10} median {med(s):.2f}x (range {min(s):.2f}x-{max(s):.2f}x), CPU"
              f" {med(cpu[al]):.3f}x: " + " ".join(f"{x:.2f}" for x in s))
    diff = med(x / y for x, y in zip(speed[mine], speed[base]))
    print(f"{mine} / {base}, median of per-round ratios: {diff:.3f}x "
          f"(target: at least 1.0x: {'met' if diff >= 1.0 else 'missed'})")


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("python")
    ap.add_argument("--alloc", default="islet,pymalloc,mimalloc")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--scale", default="1")
    ap.add_argument("--only", default=",".join(WORKLOADS))
    ap.add_argument("--owngil", type=int, default=0, metavar="N")
    a = ap.parse_args(argv)
    a.alloc, a.only = a.alloc.split(","), [w for w in a.only.split(",") if w]
    if len(a.alloc) < 2:
        sys.exit("allocators.py: --alloc needs two values or more")
    print(f"{a.python}: PYTHONMALLOC={','.join(a.alloc)}; load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    if a.only:
        workloads(a)
    if a.owngil:
        owngil(a)
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
