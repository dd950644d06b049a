"""The training run of tools/build-cpython.sh --pgo (its PROFILE_TASK):
CPython's own (`-m test --pgo`), once per allocator of an islet build, so
that profile-guided optimisation lays out and inlines for none of pymalloc,
mimalloc and islet more than the others.  A failed test does not stop the
build, as with CPython's default task."""
import os
import subprocess
import sys

for alloc in ("pymalloc", "mimalloc", "islet"):
    env = dict(os.environ, PYTHONMALLOC=alloc)
    subprocess.run([sys.executable, "-m", "test", "--pgo", "--timeout=1200"], env=env, check=False)
