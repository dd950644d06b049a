"""islet's main job: CPython with several sub-interpreters on islet.

`tools/dev demo` runs it as `islet run --stats --limit 64M -- python3.11
tools/demo.py`: every interpreter allocates from its own islet heap, and the
table islet prints at exit shows, per interpreter, what it allocated, its
peak, what was live when it ended, what its finalization left behind, its
frees of other interpreters' blocks and its limit hits.

Four sub-interpreters run on four threads (3.11 interpreters share one GIL,
so they interleave): object churn, dict/list/str building and JSON round
trips.  A fifth tries to take 128 MiB past its 64 MiB limit and gets a
MemoryError, in that interpreter only; the others carry on.
"""
import threading

import _xxsubinterpreters as interpreters

WORK = """
import json
class Point:
    def __init__(self, x, y):
        self.x, self.y = x, y
for rnd in range(20):
    pts = [Point(i, i * 2) for i in range(5000)]
    d = {str(i): [p.x, p.y, str(p.x) * 3] for i, p in enumerate(pts)}
    assert json.loads(json.dumps(d)) == d
    words = " ".join(str(i) for i in range(3000)).split()
    del pts, d, words
"""

GREEDY = """
try:
    hog = [bytearray(1 << 20) for _ in range(128)]
    raise SystemExit("no MemoryError: is islet's limit on?")
except MemoryError:
    print("greedy interpreter: MemoryError at its 64 MiB limit; the others carry on")
"""


def run(code):
    interp = interpreters.create()
    interpreters.run_string(interp, code)
    interpreters.destroy(interp)


threads = [threading.Thread(target=run, args=(WORK,)) for _ in range(4)]
for t in threads:
    t.start()
run(GREEDY)
for t in threads:
    t.join()
print("4 sub-interpreters worked on their own heaps; islet's table follows", flush=True)
