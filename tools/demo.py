"""islet's main job: CPython with several sub-interpreters on islet.

    islet run --stats -- python3.X tools/demo.py

Every interpreter allocates from its own islet heap, and the table islet
prints at exit shows, per interpreter, what it allocated, its peak, what was
live when it ended, what its finalization left behind, its frees of other
interpreters' blocks and its limit hits.

CPython 3.14 and later (concurrent.interpreters): an InterpreterPoolExecutor
with four workers builds objects, dicts and JSON.  The initializer of one
worker caps its heap at 64 MiB with the `islet` module, so the tasks that
land there get a MemoryError, in that worker only; the others finish theirs.

CPython 3.11 to 3.13: four sub-interpreters on four threads (3.11's share
one GIL, so they interleave) do the same work, and a fifth caps itself at
64 MiB and tries to take 128 MiB.
"""
import sys

import islet

LIMIT = 64 << 20

WORK = """
import json
class Point:
    def __init__(self, x, y):
        self.x, self.y = x, y
for rnd in range(ROUNDS):
    pts = [Point(i, i * 2) for i in range(20000 * SCALE)]
    d = {str(i): [p.x, p.y, str(p.x) * 3] for i, p in enumerate(pts)}
    assert json.loads(json.dumps(d)) == d
    words = " ".join(str(i) for i in range(3000)).split()
    del pts, d, words
"""


def work(scale, rounds=1):
    """One task: allocation-heavy work in the calling interpreter."""
    try:
        exec(WORK, {"ROUNDS": rounds, "SCALE": scale})
        outcome = "done"
    except MemoryError:
        outcome = "MemoryError"
    return islet.stats()["interp"], outcome


def cap_one(tokens):
    """A worker's initializer: the first worker to start takes the cap."""
    import islet

    cap = tokens.get_nowait()
    if cap:
        islet.set_limit(cap)


def pool():
    from concurrent import interpreters
    from concurrent.futures import InterpreterPoolExecutor

    tokens = interpreters.create_queue()
    for cap in (LIMIT, 0, 0, 0):
        tokens.put(cap)
    seen = {}
    with InterpreterPoolExecutor(4, initializer=cap_one, initargs=(tokens,)) as ex:
        for interp, outcome in ex.map(work, [8] * 16):
            seen.setdefault(interp, []).append(outcome)
    for interp, outcomes in sorted(seen.items()):
        print(f"worker interpreter {interp}: " +
              ", ".join(f"{outcomes.count(o)} {o}" for o in sorted(set(outcomes))))
    print("4 pool workers on their own heaps: MemoryError in the capped one only;"
          " islet's table follows", flush=True)


GREEDY = """
import islet
islet.set_limit(LIMIT)
try:
    hog = [bytearray(1 << 20) for _ in range(128)]
    raise SystemExit("no MemoryError: is the islet module's limit on?")
except MemoryError:
    print("greedy interpreter: MemoryError at its 64 MiB limit; the others carry on")
"""


def threads():
    import threading

    try:
        import _interpreters as interpreters  # 3.13

        run_string = interpreters.exec
    except ImportError:
        import _xxsubinterpreters as interpreters  # 3.11, 3.12

        run_string = interpreters.run_string

    def run(code):
        interp = interpreters.create()
        run_string(interp, code)
        interpreters.destroy(interp)

    workers = [threading.Thread(target=run, args=(f"ROUNDS, SCALE = 5, 1\n{WORK}",))
               for _ in range(4)]
    for t in workers:
        t.start()
    run(f"LIMIT = {LIMIT}\n{GREEDY}")
    for t in workers:
        t.join()
    print("4 sub-interpreters worked on their own heaps; islet's table follows", flush=True)


if __name__ == "__main__":
    pool() if sys.version_info >= (3, 14) else threads()
