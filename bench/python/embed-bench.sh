#!/usr/bin/env bash
# embed-bench.sh BUILD: CPython embedded on islet against CPython alone, in
# one run, with the build's tests/cpython/embed (3.13 builds: build-py313).
#   cycles: 1,000 sub-interpreter create/destroy cycles (100 warm-up), RSS
#           growth; target on islet: at most 1 MiB (3.13)
#   owngil: two own-GIL sub-interpreters on two threads (3.12+), in
#           sequence then in parallel; target on islet: at least 1.9x
set -eu
embed=$1/tests/cpython/embed
for mode in "" plain; do "$embed" cycles 1000 1048576 $mode; done
if "$embed" owngil plain >/dev/null 2>&1; then
  for round in 1 2 3; do
    for mode in "" plain; do "$embed" owngil $mode | head -1; done
  done
fi
