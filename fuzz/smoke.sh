#!/usr/bin/env bash
# smoke.sh FUZZER SEEDS SECONDS DICT: a short libFuzzer run from the
# committed seeds with the target's dictionary, new inputs kept in a
# temporary directory (never in the repository).
# Fails on any crash, leak or model violation the run finds.
set -u
bin=$1 seeds=$2 secs=$3 dict=$4
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$bin" -max_total_time="$secs" -print_final_stats=1 -dict="$dict" -artifact_prefix="$work/" \
  "$work" "$seeds" \
  >"$work/log" 2>&1
rc=$?
grep -E 'stat::number_of_executed_units|stat::new_units_added|cov: ' "$work/log" | tail -3
if [ "$rc" -ne 0 ]; then
  tail -40 "$work/log"
  for crash in "$work"/crash-* "$work"/leak-* "$work"/timeout-*; do
    [ -f "$crash" ] && echo "input: $(base64 -w0 "$crash")"
  done
fi
# libFuzzer exits with 77 after a crash by default, which Meson counts as a
# skipped test: any failure here is a failure.
[ "$rc" -eq 0 ] || exit 1
