#!/usr/bin/env python3
"""CPython's own regression tests, without islet and under `islet run`.

Why: the integration must not change what CPython does.  Both runs execute
the same tests of Debian's libpython3.X-testsuite in worker processes (-j2)
and every test case must end the same way in both, except the cases listed
in EXPECTED: they inspect pymalloc itself, which islet replaces (tracemalloc's
hooks change them the same way).  The whole suite (--full, 36,524 cases on
Debian's 3.11) differs in exactly these.  Those must differ, which also proves that
the workers really ran on islet.

Debian leaves test_capi out of the testsuite package; when CPython's source
can be had (FETCH is tools/fetch-cpython.sh), it is added through an overlay
of the test package.

    regrtest.py PYTHON ISLET WORKDIR [--fetch FETCH] [--full] [TEST...]

--full runs the whole suite and prints the comparison without failing on
differences (the command for the note on the integration).
"""
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

EXPECTED = {
    "test.test_sys.SysModuleTest.test_getallocatedblocks": "counts pymalloc's blocks",
    "test.test_sys.SysModuleTest.test_debugmallocstats": "prints pymalloc's arenas",
    "test.test_cmd_line.CmdLineTest.test_pythonmalloc": "asks the allocator's name: pymalloc",
}


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


def run(cmd, xml, env):
    print("+", " ".join(cmd), flush=True)
    r = subprocess.run(cmd + ["--junit-xml", xml], env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    tail = r.stdout.strip().splitlines()[-12:]
    print("\n".join("  " + line for line in tail), flush=True)
    if not os.path.exists(xml):
        sys.exit(f"regrtest: no results from {cmd[0]} (exit {r.returncode})")
    return outcomes(xml)


def outcomes(xml):
    out = {}
    for case in ET.parse(xml).iter("testcase"):
        if case.get("name") is None:  # a failed subtest's record: its test is then absent
            continue
        kinds = [c.tag for c in case if c.tag in ("failure", "error", "skipped")]
        out[case.get("name")] = kinds[0] if kinds else "passed"
    return out


def main(argv):
    python, islet, work = argv[:3]
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
    if source:
        env["PYTHONPATH"] = overlay(python, source, work)
    elif "test_capi" in tests:
        print("SKIPPED: test_capi (no CPython source: Debian's testsuite leaves it out)")
        tests = [t for t in tests if t != "test_capi"]
    args = ["-m", "test", "-j2", "--timeout", "900"] + tests
    plain = run([python] + args, os.path.join(work, "plain.xml"), env)
    isl = run([islet, "run", "--", python] + args, os.path.join(work, "islet.xml"), env)

    differ = sorted(n for n in plain.keys() | isl.keys() if plain.get(n) != isl.get(n))
    unexpected = [n for n in differ if n not in EXPECTED]
    for n in differ:
        why = EXPECTED.get(n, "UNEXPECTED")
        print(f"  {n}: {plain.get(n, 'absent')} without islet, {isl.get(n, 'absent')} under islet"
              f" ({why})")
    counts = {k: sum(v == k for v in isl.values()) for k in ("passed", "skipped", "failure", "error")}
    print(f"regrtest: {len(isl)} test cases under islet ({counts}); "
          f"{len(differ)} differ, {len(unexpected)} unexpectedly")
    if full:
        return 0
    missing = [n for n in EXPECTED if n in plain and n not in differ]
    for n in missing:
        print(f"  {n} must differ under islet ({EXPECTED[n]}): were the workers on islet?")
    return 1 if unexpected or missing or len(plain) < 100 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
