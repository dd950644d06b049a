#!/usr/bin/env bash
# build-cpython.sh VERSION: prints the prefix of a CPython VERSION (3.12 or
# later, for its own-GIL sub-interpreters) built from Debian's source
# package (tools/fetch-cpython.sh) into a cache outside the repository:
# shared libpython, headers and python-VERSION-embed.pc under PREFIX.  Built
# once (about 5 minutes on 2 cores); its log is PREFIX.log.  Exit 1, saying
# why, when it cannot be had.
set -eu
v=$1
here=$(cd "$(dirname "$0")" && pwd)
prefix=${ISLET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/islet}/cpython-$v-install
if [ -x "$prefix/bin/python$v" ] && [ -f "$prefix/lib/pkgconfig/python-$v-embed.pc" ]; then
  echo "$prefix"
  exit 0
fi
src=$("$here/fetch-cpython.sh" source "$v") || exit 1
build=$prefix.build
rm -rf "$build" "$prefix"
mkdir -p "$build"
echo "build-cpython.sh: building CPython $v into $prefix (log: $prefix.log)" >&2
{ cd "$build" &&
  "$src/configure" --prefix="$prefix" --enable-shared --without-ensurepip \
    LDFLAGS="-Wl,-rpath,$prefix/lib" &&
  make -j"$(nproc)" && make install; } >"$prefix.log" 2>&1 ||
  { echo "could not build CPython $v (see $prefix.log)" >&2; exit 1; }
rm -rf "$build"
echo "$prefix"
