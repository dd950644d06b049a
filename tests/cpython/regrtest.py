#!/usr/bin/env python3
"""CPython's own regression tests, without islet and under `islet run`, or on
a CPython with islet compiled in: with PYTHONMALLOC=pymalloc and without.

Why: the integration must not change what CPython does.  Both runs execute
the same tests of Debian's libpython3.X-testsuite in worker processes (-j2)
and every test case must end the same way in both, except the cases listed
in EXPECTED: they inspect pymalloc itself, which islet replaces (tracemalloc's
hooks change them the same way).  The whole suite (--full, 37,689 cases on
Debian's 3.11) differs in exactly these.  Those must differ, which also proves
that the workers really ran on islet.

A test module regrtest has no results for (it did not load, its worker
crashed or timed out) is an error in either run: its cases would go
uncompared.  In the whole suite on Debian 12 those are test_idle (Debian
ships tkinter's tests, not tkinter: python3-tk) and test_socket (its worker
timed out at 900 s), in both runs.

Debian leaves test_capi out of the testsuite package; when CPython's source
can be had (FETCH is tools/fetch-cpython.sh), it comes from an overlay of the
test package, in runs of its own.  Under the overlay the standard library's
root, to the tests (test.support.STDLIB_DIR), is the overlay, so the tests
that live beside their modules (ctypes.test, lib2to3.tests) do not load.

    regrtest.py PYTHON ISLET WORKDIR [--fetch FETCH] [--full] [TEST...]

ISLET `builtin`: PYTHON has islet compiled in (tools/build-cpython.sh
--with-islet), as its default allocator.  "Without islet" is then
PYTHONMALLOC=pymalloc on the same build, and its own test package (with
test_capi) is the one run.  No case may differ: the cases that inspect the
allocator run it in subprocesses of their own (-I ignores PYTHONMALLOC), so
they end alike in both runs, and each run's allocator is asked for by name
instead, in the environment its workers inherit.

--full runs the whole suite and prints the comparison without failing on
differences (the command for the note on the integration).
"""
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

EXPECTED = {
    "test.test_sys.SysModuleTest.test_getallocatedblocks": "counts pymalloc's blocks",
    "test.test_sys.SysModuleTest.test_debugmallocstats": "prints pymalloc's arenas",
    "test.test_cmd_line.CmdLineTest.test_pythonmalloc": "asks the allocator's name: pymalloc",
}
ALLOCATOR = "import _testinternalcapi; print(_testinternalcapi.pymem_getallocatorsname())"


def describe(python):
    """The interpreter a suite tests, its version and the libpython it runs."""
    return subprocess.check_output([python, "-c", DESCRIBE], text=True).strip()


DESCRIBE = """import sys
libs = sorted({w for w in open("/proc/self/maps").read().split() if "/libpython" in w})
print(f"python: {sys.executable} {sys.version.split()[0]},",
      "libpython: " + " ".join(libs) if libs else "libpython linked in statically")
"""


def overlay(python, source, work):
    """A test package that is the system's plus test_capi from the source."""
    lib = subprocess.check_output(
        [python, "-c", "import test, os; print(os.path.dirname(test.__file__))"], text=True
    ).strip()
    top = os.path.join(work, "overlay")
    pkg = os.path.join(top, "test")
    os.makedirs(pkg, exist_ok=True)
    for name in os.listdir(lib):
        link = os.path.join(pkg, name)
        if name != "__pycache__" and not os.path.lexists(link):
            os.symlink(os.path.join(lib, name), link)
    capi = os.path.join(pkg, "test_capi")
    if not os.path.lexists(capi):
        os.symlink(os.path.join(source, "Lib", "test", "test_capi"), capi)
    return top


# A module's line in regrtest's progress: "[ 3/17/1] test_x failed (uncaught exception)"
PROGRESS = re.compile(r"\[ *\d+/\d+(?:/\d+)?\] (test\S*) (.*?)(?: -- running: .*)?$")
# what regrtest says of a module whose cases it has no results for
LOST = ("failed (uncaught exception)", "crashed", "timed out", "interrupted")


def run(cmd, xml, env):
    """Runs regrtest: each case's outcome, and each module's status."""
    malloc = f"PYTHONMALLOC={env['PYTHONMALLOC']} " if "PYTHONMALLOC" in env else ""
    print("+", malloc + " ".join(cmd), flush=True)
    if os.path.exists(xml):
        os.remove(xml)
    r = subprocess.run(cmd + ["--junit-xml", xml], env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    tail = r.stdout.strip().splitlines()[-12:]
    print("\n".join("  " + line for line in tail), flush=True)
    if not os.path.exists(xml):
        sys.exit(f"regrtest: no results from {cmd[0]} (exit {r.returncode})")
    status = {}
    for line in r.stdout.splitlines():
        m = PROGRESS.search(line)
        if m:
            status[m.group(1)] = m.group(2)
    return outcomes(xml), status


def outcomes(xml):
    out = {}
    for case in ET.parse(xml).iter("testcase"):
        if case.get("name") is None:  # a failed subtest's record: its test is then absent
            continue
        kinds = [c.tag for c in case if c.tag in ("failure", "error", "skipped")]
        out[case.get("name")] = kinds[0] if kinds else "passed"
    return out


def main(argv):
    if "-h" in argv or "--help" in argv:
        print(__doc__)
        return 0
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    python, islet, work = argv[:3]
    builtin = islet == "builtin"
    expected = {} if builtin else EXPECTED
    print(describe(python), flush=True)
    rest = argv[3:]
    source = None
    if rest[:1] == ["--fetch"]:
        version = subprocess.check_output(
            [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], text=True)
        r = subprocess.run([rest[1], "source", version.strip()], stdout=subprocess.PIPE, text=True)
        source = r.stdout.strip() if r.returncode == 0 else None
        rest = rest[2:]
    full = rest[:1] == ["--full"]
    tests = rest[1:] if full else rest
    os.makedirs(work, exist_ok=True)
    env = dict(os.environ)
    env.pop("PYTHONMALLOC", None)
    if full:
        tests = subprocess.check_output([python, "-m", "test", "--list-tests"], env=env,
                                        text=True).split()
        tests += ["test_capi"] if source and "test_capi" not in tests else []
    groups = [("", env, [t for t in tests if t != "test_capi" or builtin])]
    if "test_capi" in tests and source and not builtin:
        groups.append(("-capi", dict(env, PYTHONPATH=overlay(python, source, work)), ["test_capi"]))
    elif "test_capi" in tests and not builtin:
        print("SKIPPED: test_capi (no CPython source: Debian's testsuite leaves it out)")

    plain, isl, lost, wrong = {}, {}, [], []
    for suffix, genv, names in (g for g in groups if g[2]):
        args = ["-m", "test", "-j2", "--timeout", "900"] + names
        runs = ((plain, [python] + args, genv, "without islet"),
                (isl, [islet, "run", "--", python] + args, genv, "under islet"))
        if builtin:
            runs = ((plain, [python] + args, dict(genv, PYTHONMALLOC="pymalloc"), "without islet"),
                    (isl, [python] + args, genv, "under islet"))
            for want, (_, _, cenv, how) in zip(("pymalloc", "islet"), runs):
                name = subprocess.run([python, "-c", ALLOCATOR], env=cenv, text=True,
                                      stdout=subprocess.PIPE).stdout.strip()
                print(f"  the allocator {how}: {name}")
                wrong += [] if name == want else [f"  the allocator {how} is {name}, not {want}"]
        for results, cmd, cenv, how in runs:
            cases, status = run(cmd, os.path.join(work, how.split()[0] + suffix + ".xml"), cenv)
            results.update(cases)
            lost += [f"{n}: {status.get(n, 'no result')} {how}" for n in names
                     if status.get(n, LOST[0]).startswith(LOST)]

    differ = sorted(n for n in plain.keys() | isl.keys() if plain.get(n) != isl.get(n))
    unexpected = [n for n in differ if n not in expected]
    for n in differ:
        why = expected.get(n, "UNEXPECTED")
        print(f"  {n}: {plain.get(n, 'absent')} without islet, {isl.get(n, 'absent')} under islet"
              f" ({why})")
    counts = {k: sum(v == k for v in isl.values()) for k in ("passed", "skipped", "failure", "error")}
    print(f"regrtest: {len(isl)} test cases under islet ({counts}); "
          f"{len(differ)} differ, {len(unexpected)} unexpectedly")
    for line in wrong:
        print(line)
    for line in lost:
        print(f"  {line}: its cases were not compared")
    if full:
        return 1 if lost else 0
    missing = [n for n in expected if n in plain and n not in differ]
    for n in missing:
        print(f"  {n} must differ under islet ({expected[n]}): were the workers on islet?")
    return 1 if lost or wrong or unexpected or missing or len(plain) < 100 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
