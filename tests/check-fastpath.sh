#!/usr/bin/env bash
# check-fastpath.sh LIBISLET: the own-interpreter fast paths take no lock and
# do no atomic read-modify-write.  Disassembles islet_malloc and islet_free
# (their slow paths are separate NOINLINE functions) and fails on any
# lock-prefixed instruction, any xchg with memory, or any call into a mutex.
set -u
lib=$1
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
done
exit $status
