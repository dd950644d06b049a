#!/usr/bin/env bash
# check-fastpath.sh LIBISLET [MALLOC_MAX FREE_MAX]: the own-interpreter fast
# paths take no lock and do no atomic read-modify-write.  Disassembles
# islet_malloc and islet_free (their slow paths are separate NOINLINE
# functions) and fails on any lock-prefixed instruction, any xchg with
# memory, or any call into a mutex; with budgets, also when a function has
# more instructions than its budget (a leaf's size bounds its fast path:
# the build that sets them is gcc's release build, whose counts they are).
set -u
lib=$1
declare -A budget=([islet_malloc]=${2:-} [islet_free]=${3:-})
status=0
for fn in islet_malloc islet_free; do
  body=$(objdump -d --no-show-raw-insn "$lib" | awk -v f="<$fn>:" '$2 == f {p = 1; next} p && /^$/ {exit} p')
  if [ -z "$body" ]; then
    echo "$fn: not found in $lib"
    status=1
    continue
  fi
  bad=$(grep -E 'lock|xchg[a-z]* .*\(|cmpxchg|call.*(mutex|spin)' <<<"$body")
  if [ -n "$bad" ]; then
    echo "$fn: atomic or locking instruction on the fast path:"
    echo "$bad"
    status=1
  else
    echo "$fn: $(wc -l <<<"$body") instructions, no lock, no atomic read-modify-write"
  fi
  if [ -n "${budget[$fn]}" ] && [ "$(wc -l <<<"$body")" -gt "${budget[$fn]}" ]; then
    echo "$fn: over its budget of ${budget[$fn]} instructions"
    status=1
  fi
done
exit $status
