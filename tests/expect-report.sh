#!/usr/bin/env bash
# expect-report.sh PATTERN CMD...: a negative control.  Passes only when CMD
# fails AND its output contains PATTERN, i.e. the tool caught the bug for the
# reason we planted; a control that is not caught fails the suite.
set -u
pattern=$1
shift
out=$("$@" 2>&1)
rc=$?
if [ "$rc" -ne 0 ] && grep -q -- "$pattern" <<<"$out"; then
  echo "caught as expected (exit $rc): $(grep -m1 -- "$pattern" <<<"$out")"
  exit 0
fi
echo "NOT CAUGHT: exit $rc, expected output matching: $pattern"
echo "$out" | tail -20
exit 1
