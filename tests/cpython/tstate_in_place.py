#!/usr/bin/env python3
"""The hooks find the calling interpreter's heap in their thread's cache,
not in the interpreters' table (which takes a lock): under callgrind,
pthread_mutex_lock is called far less often than h_malloc.  With
--in-place (Debian's 3.14 and 3.15, whose getter is one load from the
thread pointer) the hooks also read the thread state in place
(cpython/tstate.c): CPython's getter is called on cache misses only, not
once per allocation as when the hooks call it.

    tstate_in_place.py ISLET PYTHON [--in-place]
"""
import os
import re
import subprocess
import sys
import tempfile

GETTER = "PyThreadState_GetUnchecked"


def calls(path):
    """Calls of each function name in a callgrind.out file."""
    names, counts, target = {}, {}, None
    with open(path) as f:
        for line in f:
            m = re.match(r"(c?fn)=\((\d+)\)(?: (.*))?", line)
            if m:
                if m[3]:
                    names[m[2]] = m[3]
                target = names.get(m[2]) if m[1] == "cfn" else None
            elif line.startswith("calls=") and target:
                counts[target] = counts.get(target, 0) + int(line.split()[0][6:])
    return counts


def main(argv):
    islet, python, in_place = argv[0], argv[1], "--in-place" in argv[2:]
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "callgrind.out")
        subprocess.run([islet, "run", "--", "valgrind", "--tool=callgrind",
                        f"--callgrind-out-file={out}", python, "-c",
                        "import json; json.dumps(list(range(50000)))"],
                       check=True, capture_output=True)
        c = calls(out)
    allocs = c.get("h_malloc", 0)
    locks = sum(n for name, n in c.items() if name.startswith("pthread_mutex_lock"))
    got = c.get(GETTER, 0)
    print(f"h_malloc called {allocs} times, pthread_mutex_lock {locks}, {GETTER} {got}")
    if allocs < 50000:
        print("too few allocations through the hook to tell")
        return 1
    if locks > allocs // 10:
        print("the hooks look their heap up in the table: the thread's cache does not serve them")
        return 1
    if in_place and got > allocs // 100:
        print("the hooks call the getter: the thread state is not read in place")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
