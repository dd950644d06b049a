#!/usr/bin/env bash
# fetch-cpython-headers.sh VERSION: prints a directory holding CPython
# VERSION's headers (usr/include/pythonX.Y), from Debian's libpythonX.Y-dev
# (3.13 from trixie, 3.14 from sid), fetched once into a cache outside the
# repository with a private apt configuration (the system's sources are not
# touched).  Exit 1, saying why, when they cannot be had.
set -eu
v=$1
cache=${ISLET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/islet}/cpython-$v
if [ -f "$cache/usr/include/python$v/Python.h" ]; then
  echo "$cache"
  exit 0
fi
case $v in 3.13) suite=trixie ;; 3.14) suite=sid ;; *) echo "no source for CPython $v" >&2; exit 1 ;; esac
apt=$cache.apt
mkdir -p "$apt/lists/partial" "$apt/archives/partial" "$cache"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $suite main" >"$apt/sources.list"
opts=(-o "Dir::Etc::sourcelist=$apt/sources.list" -o Dir::Etc::sourceparts=- -o "Dir::State::Lists=$apt/lists"
      -o "Dir::Cache::archives=$apt/archives" -o Debug::NoLocking=1 -o APT::Sandbox::User=root)
{ apt-get "${opts[@]}" update && (cd "$apt" && apt-get "${opts[@]}" download "libpython$v-dev"); } >"$apt/log" 2>&1 ||
  { echo "could not fetch libpython$v-dev from Debian $suite (see $apt/log)" >&2; exit 1; }
dpkg-deb -x "$apt"/libpython"$v"-dev_*.deb "$cache"
rm -rf "$apt"
echo "$cache"
