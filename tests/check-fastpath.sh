#!/usr/bin/env bash
# check-fastpath.sh LIB [FN[=BUDGET]...]: the fast paths take no lock, do no
# atomic read-modify-write and call nothing.  Disassembles each function
# (default: islet_malloc and islet_free; their slow paths are separate
# NOINLINE functions, reached by tail jumps) and fails on any lock-prefixed
# instruction, any xchg with memory, and any call: a fast path is a leaf.
# With a budget, it also fails when the fast path has more instructions:
# those from the entry to the first ret or jmp, the path that falls through
# every test (the build that sets the budgets is gcc's release build, which
# lays the common path out that way, and whose counts they are).
set -u
lib=$1
shift
[ $# -eq 0 ] && set -- islet_malloc islet_free
status=0
for spec; do
  fn=${spec%%=*}
  budget=${spec#"$fn"}
  budget=${budget#=}
  body=$(objdump -d --no-show-raw-insn "$lib" | awk -v f="<$fn>:" '$2 == f {p = 1; next} p && /^$/ {exit} p')
  if [ -z "$body" ]; then
    echo "$fn: not found in $lib"
    status=1
    continue
  fi
  n=$(wc -l <<<"$body")
  fast=$(awk '{n++} /:[ \t]+(ret|jmp)/ {print n; exit}' <<<"$body")
  bad=$(grep -E ':\s+(lock|call|cmpxchg|xchg[a-z]* .*\()' <<<"$body")
  if [ -n "$bad" ]; then
    echo "$fn: a call, an atomic or a locking instruction on the fast path:"
    echo "$bad"
    status=1
  else
    echo "$fn: $n instructions, $fast to the first ret or jmp, a leaf, no lock, no atomic read-modify-write"
  fi
  if [ -n "$budget" ] && [ "${fast:-$n}" -gt "$budget" ]; then
    echo "$fn: its fast path is over its budget of $budget instructions"
    status=1
  fi
done
exit $status
