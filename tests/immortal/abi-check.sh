#!/usr/bin/env bash
# abi-check.sh SRC BUILD: compiles tests/immortal/abi_check.c against the
# headers of CPython 3.13 (encoding 312), 3.14 and 3.15 (encoding 314), fetched by
# tools/fetch-cpython.sh, and runs it.  A version whose headers
# cannot be had is skipped loudly; if none can, the test is skipped (77).
# A negative control runs last: 3.13's headers against the 3.14 encoding
# must fail, or the check could not tell encodings apart.
set -u
src=$1 build=$2
ran=0 failed=0
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for run in 3.13:312:match 3.14:314:match 3.15:314:match 3.13:314:mismatch; do
  IFS=: read -r v abi expect <<<"$run"
  if ! dir=$("$src/tools/fetch-cpython.sh" headers "$v"); then
    echo "SKIPPED: CPython $v headers are not available here; encoding $abi not checked"
    continue
  fi
  inc=$dir/usr/include
  cc -std=c11 -Wall -Wextra -Werror -I"$inc" -I"$inc/python$v" -I"$src/include" -I"$build" \
    -DISLET_IMMORTAL_ABI="$abi" "$src/tests/immortal/abi_check.c" -L"$build" -lislet \
    -Wl,-rpath,"$build" -o "$out/abi" || { failed=1; continue; }
  if [ "$expect" = match ]; then
    "$out/abi" || failed=1
    ran=$((ran + 1))
  elif "$out/abi" >/dev/null; then
    echo "NEGATIVE CONTROL NOT CAUGHT: CPython $v passed against encoding $abi"
    failed=1
  else
    echo "negative control caught: CPython $v differs from encoding $abi"
  fi
done
[ "$failed" -ne 0 ] && exit 1
[ "$ran" -eq 0 ] && exit 77
exit 0
