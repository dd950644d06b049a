#!/usr/bin/env bash
# afl-smoke.sh FUZZER SEEDS SECONDS: a short AFL++ run of a target built with
# afl-clang-fast, from the committed seeds, its queue in a temporary
# directory.  Fails when afl-fuzz cannot run the target, a seed crashes, or
# the run saves a crash.  The environment lets it run on a VM as root
# (no CPU frequency control, no core_pattern change, no pinning).
set -u
bin=$1 seeds=$2 secs=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_AFFINITY=1 AFL_NO_UI=1 \
  afl-fuzz -V "$secs" -i "$seeds" -o "$work/out" -- "$bin" >"$work/log" 2>&1
rc=$?
stats=$work/out/default/fuzzer_stats
if [ "$rc" -ne 0 ] || [ ! -f "$stats" ]; then
  tail -30 "$work/log"
  exit 1
fi
grep -E '^(execs_done|execs_per_sec|edges_found|saved_crashes) ' "$stats"
crashes=$(awk '$1 == "saved_crashes" { print $3 }' "$stats")
execs=$(awk '$1 == "execs_done" { print $3 }' "$stats")
[ "$crashes" = 0 ] && [ "${execs:-0}" -gt 0 ] && exit 0
for crash in "$work"/out/default/crashes/id*; do
  [ -f "$crash" ] && echo "input: $(base64 -w0 "$crash")"
done
exit 1
