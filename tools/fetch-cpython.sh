#!/usr/bin/env bash
# fetch-cpython.sh headers|source VERSION: prints a directory holding, from
# Debian, CPython VERSION's headers (usr/include/pythonX.Y, from
# libpythonX.Y-dev) or its unpacked source tree (from the pythonX.Y source
# package).  3.11 comes from bookworm, 3.13 from trixie, 3.14 and 3.15 from
# sid.  It is fetched once into a cache outside the repository
# with a private apt configuration (the system's sources are not touched),
# from the mirror the system's apt uses (tools/debian-mirror.sh).  Exit 1,
# saying why, when it cannot be had.
set -eu
what=$1 v=$2
cache=${ISLET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/islet}/cpython-$v
[ "$what" = source ] && cache=$cache-src
done_file=$cache/usr/include/python$v/Python.h
[ "$what" = source ] && done_file=$cache/configure
if [ -f "$done_file" ]; then
  echo "$cache"
  exit 0
fi
case $v in 3.11) suite=bookworm ;; 3.13) suite=trixie ;; 3.14 | 3.15) suite=sid ;;
  *) echo "no Debian source for CPython $v" >&2; exit 1 ;; esac
mirror=$("$(dirname "$0")/debian-mirror.sh") || exit 1
apt=$cache.apt
rm -rf "$cache" "$apt"
mkdir -p "$apt/lists/partial" "$apt/archives/partial" "$cache"
kind=deb
[ "$what" = source ] && kind=deb-src
echo "$kind [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $suite main" >"$apt/sources.list"
opts=(-o "Dir::Etc::sourcelist=$apt/sources.list" -o Dir::Etc::sourceparts=- -o "Dir::State::Lists=$apt/lists"
      -o "Dir::Cache::archives=$apt/archives" -o Debug::NoLocking=1 -o APT::Sandbox::User=root
      -o Acquire::Check-Valid-Until=false)
if [ "$what" = source ]; then
  get=(source --download-only "python$v")
else
  get=(download "libpython$v-dev")
fi
{ apt-get "${opts[@]}" update && (cd "$apt" && apt-get "${opts[@]}" "${get[@]}"); } >"$apt/log" 2>&1 ||
  { echo "could not fetch CPython $v's $what from Debian $suite (see $apt/log)" >&2; exit 1; }
if [ "$what" = source ]; then
  tar xf "$(ls "$apt"/python"$v"_*.orig.tar.* | grep -v '\.asc$')" -C "$cache" --strip-components=1
else
  dpkg-deb -x "$apt"/libpython"$v"-dev_*.deb "$cache"
fi
rm -rf "$apt"
echo "$cache"
