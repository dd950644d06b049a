#!/usr/bin/env python3
"""`islet run` on an unmodified python3: what its options promise.

    islet_run.py ISLET PYTHON DEMO WORKDIR

The demo (tools/demo.py) runs four working sub-interpreters and one that
caps itself at 64 MiB with the islet module and exceeds it; the per-interpreter JSON must show all six
interpreters on their own heaps, the limit hit by that one only, and the
cross-interpreter frees CPython 3.11 makes (its interpreters share static
types' caches).  The cross-free policies report or abort with one line each,
and PYTHONMALLOC turns islet off with a message instead of being ignored.

Beyond the demo, islet run must never break a process nor silently
misbehave: a bad option is an error before the program starts (exit 2), a
teardown policy that would free shared objects is refused, an uncaught
Ctrl-C still writes the table, -X dev turns islet off as PYTHONDEVMODE
does, and a child that is not this CPython runs as without islet.  Last,
regrtest.py (the other suite) prints its usage and fails on a test module
that did not run.
"""
import json
import os
import signal
import subprocess
import sys

from regrtest import describe

islet, python, demo, work = sys.argv[1:5]
islet = os.path.abspath(islet)
os.makedirs(work, exist_ok=True)
failures = []
print(describe(python))


def check(ok, what):
    print(("ok: " if ok else "FAILED: ") + what)
    if not ok:
        failures.append(what)


def run(opts, env=None, script=(demo,)):
    return subprocess.run([islet, "run"] + opts + ["--", python, *script], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def islet_run(args, env=None, cwd=None):
    """`islet run ARGS`: its exit status (None: hung for a minute), stdout and stderr."""
    try:
        return subprocess.run([islet, "run"] + args, env=env, cwd=cwd, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, timeout=60)
    except subprocess.TimeoutExpired as e:
        return subprocess.CompletedProcess(e.cmd, None, "", "hung")


path = os.path.join(work, "demo.json")
r = run(["--json", path, "--stats"])
check(r.returncode == 0, f"the demo runs on islet (exit {r.returncode})")
if r.returncode:
    print(r.stderr[-2000:])
rows = json.load(open(path))
subs = [x for x in rows if x["interp"] != 0]
check(len(rows) == 6 and all(x["ended"] for x in rows), "six interpreters, all ended")
check(all(x["allocs"] > 10000 for x in rows), "each allocated on its own heap")
hit = [x for x in rows if x["limit_hits"]]
check(len(hit) == 1 and hit[0]["peak_bytes"] <= 64 << 20, "one interpreter hit its limit")
check(sum(x["cross_frees"] for x in subs) > 0, "cross-interpreter frees are counted")
check("memory per CPython interpreter" in r.stderr and r.stderr.count(" ended ") == 6,
      "--stats prints the table")

r = run(["--cross-free", "report", "--json", path])
lines = [x for x in r.stderr.splitlines() if x.startswith("islet: cross-interpreter free: 0x")]
sent = sum(x["cross_frees"] for x in json.load(open(path)))
check(r.returncode == 0 and lines and len(lines) == sent,
      f"report: one line per cross free ({len(lines)} lines, {sent} counted)")

r = run(["--cross-free", "abort"])
check(r.returncode == -signal.SIGABRT and "islet: cross-interpreter free: 0x" in r.stderr,
      f"abort: the first cross free aborts with its line (exit {r.returncode})")

r = run([], env=dict(os.environ, PYTHONMALLOC="malloc"), script=("-c", "pass"))
check(r.returncode == 0 and "PYTHONMALLOC is set" in r.stderr and "islet is off" in r.stderr,
      "PYTHONMALLOC turns islet off, loudly")

# Sub-interpreters come and go, and a child Python does the same: the
# process islet run started says once that interpreters sharing objects
# are orphaned whatever the policy (3.11: all of them), its child does not.
cycles = os.path.join(work, "cycles.py")
with open(cycles, "w") as f:
    f.write("""
import subprocess, sys
try:
    import _interpreters as xi                      # 3.13+
except ImportError:
    import _xxsubinterpreters as xi
for _ in range(3):
    i = xi.create()
    xi.run_string(i, "import json; json.dumps({'a': [1, 2]})")
    xi.destroy(i)
if sys.argv[1:] != ["child"]:
    subprocess.run([sys.executable, __file__, "child"], check=True)
""")
for policy in ("release", "quarantine", "orphan"):
    r = islet_run(["--teardown", policy, "--", python, cycles])
    said = r.stderr.count(f"--teardown {policy}")
    check(r.returncode == 0 and said == (policy != "orphan"),
          f"--teardown {policy}: sub-interpreters end, said {said} times (exit {r.returncode}: "
          f"{r.stderr.strip()[-200:]!r})")

# An uncaught KeyboardInterrupt: CPython finalizes, then kills itself with
# SIGINT, so exit's handlers do not run.
sigint = os.path.join(work, "sigint.json")
if os.path.exists(sigint):
    os.remove(sigint)
r = islet_run(["--stats", "--json", sigint, "--", python, "-c",
               "import os, signal; os.kill(os.getpid(), signal.SIGINT)"])
check(r.returncode == -signal.SIGINT and r.stderr.count("memory per CPython interpreter") == 1
      and os.path.exists(sigint) and len(json.load(open(sigint))) == 1,
      f"Ctrl-C: the table and the file are written once (exit {r.returncode})")

# --json's file was writable when the program started, and is no more.
gone = os.path.join(work, "gone")
os.makedirs(gone, exist_ok=True)
r = islet_run(["--json", os.path.join(gone, "x.json"), "--", python, "-c",
               f"import shutil; shutil.rmtree({gone!r})"])
check(r.returncode == 0 and "islet: cannot write the table to " in r.stderr,
      f"--json: a file that cannot be written at exit is said ({r.stderr.strip()!r})")

# Options: the usage when asked, and a bad one is an error before the
# program starts; a relative --json file is where islet run was started.
r = islet_run(["--help"])
check(r.returncode == 0 and r.stdout.startswith("islet run [--stats]"), "--help: the usage")
ran = os.path.join(work, "ran")
for opts in (["--limit", "64Q"], ["--limit", "1.5G"], ["--limit", "-1"], ["--limit", "abc"],
             ["--limit", ""], ["--limit", "1M"], ["--limit", "99999999999999999999G"],
             ["--teardown", "bogus"], ["--cross-free", "nope"], ["--purge-delay", "soon"],
             ["--json", "/nonexistent/dir/x.json"], ["--jsn", "x.json"]):
    if os.path.exists(ran):
        os.remove(ran)
    r = islet_run(opts + ["--", python, "-c", f"open({ran!r}, 'w')"])
    check(r.returncode == 2 and r.stderr.startswith("islet: ") and not os.path.exists(ran),
          f"{' '.join(opts)}: an error before the program starts (exit {r.returncode}: "
          f"{r.stderr.strip()[:120]!r})")
rel = os.path.join(work, "rel.json")
if os.path.exists(rel):
    os.remove(rel)
r = islet_run(["--json", "rel.json", "--", python, "-c", "import os; os.chdir('/')"], cwd=work)
check(r.returncode == 0 and os.path.exists(rel), "--json FILE is where islet run was started")
r = islet_run(["--limit", "0", "--", python, "-c", "bytearray(80 << 20)"])
check(r.returncode == 0, f"--limit 0: no limit (exit {r.returncode})")
r = islet_run(["--limit", "4M", "--", python, "-c", "pass"])
check(r.returncode == 0, f"--limit 4M, the floor, starts CPython (exit {r.returncode})")

# The heaps take 4 KiB pages (VmFlags nh) whatever the system's THP mode,
# and 2 MiB ones (hg) with --huge-pages; ISLET_HUGE_PAGES set by hand to
# anything but 0 or 1 is said, and is 0.
THP_FLAGS = ("import sys; x = [sys]; a = id(x)\n"
             "for line in open('/proc/self/smaps'):\n"
             "    r = line.split()[0].split('-')\n"
             "    if len(r) == 2: hit = int(r[0], 16) <= a < int(r[1], 16)\n"
             "    elif hit and line.startswith('VmFlags:'): print('hg' if ' hg' in line else "
             "'nh' if ' nh' in line else 'none'); break\n")
thp_env = {k: v for k, v in os.environ.items() if k != "ISLET_HUGE_PAGES"}
thp_cases = (([], {}, "nh", False), (["--huge-pages"], {}, "hg", False),
             ([], {"ISLET_HUGE_PAGES": "yes"}, "nh", True))
if not os.path.exists("/sys/kernel/mm/transparent_hugepage"):
    print("SKIPPED: --huge-pages: this kernel has no transparent huge pages")
    thp_cases = ()
for opts, env_more, want, said in thp_cases:
    r = islet_run(opts + ["--", python, "-c", THP_FLAGS], env=dict(thp_env, **env_more))
    warned = "islet: ISLET_HUGE_PAGES=yes is not valid: using 0" in r.stderr
    check(r.returncode == 0 and r.stdout.strip() == want and warned == said,
          f"{' '.join(opts) or 'no option'} {env_more or ''}: a block's mapping has {want} "
          f"({r.stdout.strip()!r}, warned: {warned})")

# -X dev replaces the allocator as PYTHONDEVMODE does; after -c, it is the
# program's argument.
for flags in (["-X", "dev"], ["-Xdev"], ["-bX", "dev=1"]):
    r = islet_run(["--stats", "--", python, *flags, "-c", "pass"])
    check(r.returncode == 0 and "-X dev is set" in r.stderr and "islet is off" in r.stderr,
          f"{' '.join(flags)} turns islet off, loudly ({r.stderr.strip()[:100]!r})")
r = islet_run(["--stats", "--", python, "-c", "pass", "-X", "dev"])
check(r.returncode == 0 and "islet is off" not in r.stderr and " ended " in r.stderr,
      "-X dev after -c COMMAND is the command's: islet stays on")

# LD_PRELOAD reaches every child: one that is not a Python (even binding
# every symbol at load), or another CPython, runs as without islet; that
# CPython as the program islet run started is told so.
r = islet_run(["--", python, "-c", "import subprocess; subprocess.run(['true'], check=True)"],
              env=dict(os.environ, LD_BIND_NOW="1"))
check(r.returncode == 0, f"a child that is not a Python runs ({r.stderr.strip()[-200:]!r})")
other = os.path.expanduser("~/.cache/islet/cpython-3.13-install/bin/python3.13")
if os.path.exists(other):
    r = islet_run(["--", python, "-c", f"import subprocess; subprocess.run([{other!r}, '-c', "
                   "'print(6 * 7)'], check=True)"])
    check(r.returncode == 0 and r.stdout == "42\n",
          f"a child of another CPython runs ({r.stderr.strip()[-200:]!r})")
    r = islet_run(["--", other, "-c", "print(6 * 7)"])
    check(r.returncode == 0 and r.stdout == "42\n" and "islet is off" in r.stderr,
          f"another CPython runs, and islet says it is off ({r.stderr.strip()[-200:]!r})")
else:
    print(f"SKIPPED: a child of another CPython: no {other} (tools/build-cpython.sh 3.13)")

# regrtest.py, the other suite: its usage, and a test module that never ran
# is an error, not a module with no cases.
regrtest = [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "regrtest.py")]
r = subprocess.run(regrtest + ["--help"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
check(r.returncode == 0 and "regrtest.py PYTHON ISLET WORKDIR" in r.stdout,
      f"regrtest.py --help: its usage (exit {r.returncode}: {r.stderr.strip()[-100:]!r})")
r = subprocess.run(regrtest + [python, islet, os.path.join(work, "regrtest"), "test_islet_none"],
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
check(r.returncode == 1 and "test_islet_none: failed (uncaught exception) without islet" in r.stdout,
      f"regrtest.py: a test module that did not run is an error (exit {r.returncode})")

sys.exit(1 if failures else 0)
