"""Python workloads for bench/python/pybench.py, one per name:

    python3 workloads.py NAME [SCALE]

Each is what CPython's object allocator sees most: small objects made and
dropped by the million.  SCALE (default 1) multiplies the work.
"""
import json
import re
import sys


def churn(n):
    """Object churn: tuples, floats, small ints and lists made and dropped."""
    keep = [None] * 4096
    for i in range(n * 400_000):
        keep[i & 4095] = (i * 0.5, [i, i + 1], str(i & 1023))


def containers(n):
    """dict/list/str building: a table of records, grouped and joined."""
    for _ in range(n * 12):
        rows = [{"id": i, "name": "user%d" % i, "tags": ["t%d" % (i % 7)] * 3}
                for i in range(20_000)]
        by_tag = {}
        for r in rows:
            by_tag.setdefault(r["tags"][0], []).append(r["name"])
        text = ",".join(n for names in by_tag.values() for n in names)
        assert len(text) > 100_000


def json_rt(n):
    """JSON round trips of a nested document."""
    doc = {"users": [{"id": i, "name": "n%d" % i, "scores": list(range(i % 10)),
                      "meta": {"a": i * 1.5, "b": None, "c": [True, False]}}
                     for i in range(5_000)]}
    for _ in range(n * 12):
        assert json.loads(json.dumps(doc)) == doc


def regex(n):
    """Regex: tokenising and substituting a log."""
    line = "2026-12-01 07:06:56 INFO worker-17 handled /api/v1/items/4521 in 12.5ms\n"
    log = line * 2_000
    tok = re.compile(r"(\d+)-(\d+)-(\d+) (\S+) (\w+) (\S+) handled (\S+) in ([\d.]+)ms")
    for _ in range(n * 8):
        rows = [m.groups() for m in tok.finditer(log)]
        assert len(rows) == 2_000
        assert re.sub(r"\d+", "#", log).count("#") > 10_000


class Body:
    def __init__(self, i):
        self.pos = [float(i), float(i * 2)]
        self.vel = [1.0, -0.5]
        self.history = []

    def step(self, dt):
        self.pos = [p + v * dt for p, v in zip(self.pos, self.vel)]
        self.history.append(tuple(self.pos))
        if len(self.history) > 8:
            self.history = self.history[-4:]


class Heavy(Body):
    def step(self, dt):
        super().step(dt)
        self.vel = [v * 0.999 for v in self.vel]


def simulation(n):
    """A class-heavy simulation: bodies with attribute dicts, lists, tuples."""
    bodies = [Heavy(i) if i % 3 else Body(i) for i in range(2_000)]
    for _ in range(n * 60):
        for b in bodies:
            b.step(0.01)


WORKLOADS = {"churn": churn, "containers": containers, "json": json_rt, "regex": regex,
             "simulation": simulation}

if __name__ == "__main__":
    WORKLOADS[sys.argv[1]](int(sys.argv[2]) if len(sys.argv) > 2 else 1)
