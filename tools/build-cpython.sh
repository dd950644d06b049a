#!/usr/bin/env bash
# build-cpython.sh VERSION [--with-islet [--pgo]]: prints the prefix of a CPython
# VERSION built from Debian's source package (tools/fetch-cpython.sh) into a
# cache outside the repository: shared libpython, headers and
# python-VERSION-embed.pc under PREFIX.  Built once (about 5 minutes on 2
# cores); its log is PREFIX.log.  Exit 1, saying why, when it cannot be had.
# A plain build is for the own-GIL sub-interpreters of 3.12 or later (3.11
# builds too, but Debian 12's own python3.11 serves the 3.11 suites).
#
# --with-islet: islet compiled in (README, "islet compiled into CPython"),
# in a prefix of its own (cpython-VERSION-islet-install): the patches of
# cpython/patches/VERSION (3.11 and 3.13) applied to a copy of the source,
# configure regenerated (autoconf), and this tree's islet built by Meson as
# a static library that libpython takes in.  Built again when islet's
# sources or the patches change (PREFIX/islet.stamp).
#
# --pgo: the same, built with profile-guided optimisation as distributions
# build CPython (--enable-optimizations), in cpython-VERSION-islet-pgo-install,
# for benchmarks (about 40 minutes on 2 cores).  islet's library is
# instrumented and optimised with CPython's objects, and the training run
# (tools/pgo-task.py) is CPython's own, once per allocator, so that the
# layout favours none of pymalloc, mimalloc and islet.
set -eu
v=$1
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
islet= pgo=
case ${2:-}/${3:-} in
/) ;;
--with-islet/) islet=1 ;;
--with-islet/--pgo) islet=1 pgo=1 ;;
*) echo "usage: build-cpython.sh VERSION [--with-islet [--pgo]]" >&2; exit 2 ;;
esac
prefix=${ISLET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/islet}/cpython-$v${islet:+-islet}${pgo:+-pgo}-install

# What the islet build of the tree $1 is made of: a change to any of it
# builds it again.
stamp() {
  (cd "$1" && find alloc immortal freelists singletons include cpython/module.c cpython/cpython.h \
    "cpython/patches/$v" meson.build meson_options.txt ${pgo:+tools/pgo-task.py} -type f |
    LC_ALL=C sort | xargs sha256sum | sha256sum | cut -d' ' -f1)
}

want=
if [ -n "$islet" ]; then
  [ -d "$root/cpython/patches/$v" ] || { echo "no islet patches for CPython $v" >&2; exit 1; }
  want=$(stamp "$root")
fi
if [ -x "$prefix/bin/python$v" ] && [ -f "$prefix/lib/pkgconfig/python-$v-embed.pc" ] &&
  { [ -z "$islet" ] || [ "$(cat "$prefix/islet.stamp" 2>/dev/null)" = "$want" ]; }; then
  echo "$prefix"
  exit 0
fi
src=$("$here/fetch-cpython.sh" source "$v") || exit 1
build=$prefix.build
rm -rf "$build" "$prefix"
mkdir -p "$build"
args=()
if [ -n "$islet" ]; then
  command -v autoconf >/dev/null || { echo "--with-islet needs autoconf (apt-get install autoconf)" >&2; exit 1; }
fi
echo "build-cpython.sh: building CPython $v${islet:+ with islet} into $prefix (log: $prefix.log)" >&2
(
  if [ -n "$islet" ]; then
    # The source cache stays pristine: the patches go to a copy.  islet is
    # built as libpython's other objects are: gcc, position-independent,
    # on the system backend (no jemalloc inside libpython), without the
    # shim, tests or benchmarks.
    # islet's tree is copied as it is now (without builds): a build that
    # takes 40 minutes (--pgo) must not see its sources change midway.
    mkdir -p "$build/islet-src" &&
      (cd "$root" && tar --exclude='./build*' --exclude=./.git --exclude='./fuzz/corpus-*' -cf - .) |
      tar -xf - -C "$build/islet-src" &&
      cp -a "$src" "$build/src" &&
      for p in "$build/islet-src/cpython/patches/$v"/*.patch; do patch -d "$build/src" -p1 <"$p" || exit 1; done &&
      (cd "$build/src" && autoconf && rm -rf autom4te.cache) &&
      CC=gcc meson setup "$build/islet" "$build/islet-src" --buildtype=release -Ddefault_library=static \
        -Db_staticpic=true -Dmem_backend=system -Dcpython=disabled -Dtests=false \
        -Dbench=disabled -Dvalgrind=disabled ${pgo:+-Db_pgo=generate} &&
      ninja -C "$build/islet" libislet.a || exit 1
    src=$build/src
    # (an instrumented library needs gcc's profiling runtime to link)
    args=(--with-islet="$build/islet-src" ISLET_LIBS="$build/islet/libislet.a${pgo:+ -lgcov}")
  fi
  [ -z "$pgo" ] || args+=(--enable-optimizations PROFILE_TASK="$build/islet-src/tools/pgo-task.py")
  mkdir -p "$build/obj" && cd "$build/obj" &&
    CC=gcc "$src/configure" --prefix="$prefix" --enable-shared --without-ensurepip "${args[@]}" \
      LDFLAGS="-Wl,-rpath,$prefix/lib" || exit 1
  if [ -n "$pgo" ]; then
    # CPython's profile-opt in two steps, islet's library rebuilt from its
    # profile between them: the training run (instrumented), then the
    # optimised build that links the library
    make -j"$(nproc)" profile-run-stamp &&
      meson configure "$build/islet" -Db_pgo=use && ninja -C "$build/islet" libislet.a || exit 1
  fi
  make -j"$(nproc)" && make install
) >"$prefix.log" 2>&1 ||
  { echo "could not build CPython $v${islet:+ with islet} (see $prefix.log)" >&2; exit 1; }
# the stamp of what was built, which may have changed since the test above
[ -z "$islet" ] || stamp "$build/islet-src" >"$prefix/islet.stamp"
rm -rf "$build"
echo "$prefix"
