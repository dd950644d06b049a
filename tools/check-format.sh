#!/usr/bin/env bash
# The format check: every C file of the project as clang-format (.clang-format) writes it.
cd "$(dirname "$0")/.." || exit 1
bad=0
for f in $(git ls-files '*.c' '*.h' 2>/dev/null || find . -name '*.[ch]' -not -path './build*'); do
  clang-format --dry-run -Werror "$f" 2>/dev/null || { echo "not formatted: $f"; bad=1; }
done
exit $bad
