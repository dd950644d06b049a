#!/usr/bin/env bash
# sid-root.sh: prints the path of a Debian sid root (a chroot) holding
# CPython 3.14 and 3.15 (from sid, or 3.15 from experimental while sid lacks
# it), with their headers and test suites, and everything needed to build and test islet inside it.  Debian 12
# has no CPython 3.14, and sid's binaries need a newer glibc, hence a root.
# It is made once (about 10 minutes, 600+ MB) in a cache outside the
# repository, with the mirror this machine's apt uses; a half-made root is
# never used (it is built under another name and renamed when complete).
# Exit 1, saying why, when it cannot be made.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${ISLET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/islet}
root=$cache/sid-root
marker=.islet-sid-root-complete
tmp=$root.tmp
log=$cache/sid-root.log
PKGS=(meson ninja-build pkg-config gcc clang libcriterion-dev libjemalloc-dev valgrind
      python3.14-dev libpython3.14-testsuite)
PKGS_315=(python3.15 python3.15-dev libpython3.15-testsuite)

# remove DIR: a half-made root, first unmounting whatever an interrupted
# debootstrap left mounted in it, never crossing into another file system.
remove() {
  local m
  for m in $(awk -v d="$1/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r); do
    umount -l "$m" || return 1
  done
  rm -rf --one-file-system "$1"
}

die() {
  echo "sid-root.sh: $*" >&2
  exit 1
}

ensure_debootstrap() {
  command -v debootstrap >/dev/null && return 0
  [ "$(id -u)" -eq 0 ] || die "debootstrap is missing; as root: apt-get install debootstrap"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap; } \
    >>"$log" 2>&1 || die "could not install debootstrap (see $log)"
}

# in_root CMD...: CMD inside the half-made root.
in_root() {
  "$here/in-sid-root.sh" "$tmp" "$@"
}

configure_apt() {
  local mirror=$1
  cat >"$tmp/etc/apt/sources.list" <<EOT
deb $mirror sid main
deb $mirror experimental main
EOT
  echo 'Acquire::Check-Valid-Until "false";' >"$tmp/etc/apt/apt.conf.d/90islet"
  echo 'APT::Install-Recommends "false";' >>"$tmp/etc/apt/apt.conf.d/90islet"
}

# The compiler-rt runtime (sanitizers): unversioned where sid has it.
clang_rt() {
  if in_root apt-cache show libclang-rt-dev >/dev/null 2>&1; then
    echo libclang-rt-dev
  else
    in_root sh -c 'v=$(clang --version | sed -n "s/.*clang version \([0-9]*\).*/\1/p"); echo libclang-rt-$v-dev'
  fi
}

install_packages() {
  local apt=(env DEBIAN_FRONTEND=noninteractive apt-get -y -q)
  in_root "${apt[@]}" update || return 1
  in_root "${apt[@]}" install "${PKGS[@]}" || return 1
  in_root "${apt[@]}" install "$(clang_rt)" || return 1
  if in_root apt-cache policy python3.15 | grep -q 'Candidate: [0-9]'; then
    in_root "${apt[@]}" install "${PKGS_315[@]}" || return 1
  else
    in_root "${apt[@]}" -t experimental install "${PKGS_315[@]}" || return 1
  fi
  in_root apt-get clean
}

make_root() {
  local mirror
  mirror=$("$here/debian-mirror.sh") || die "no Debian mirror to make the root from"
  ensure_debootstrap
  remove "$tmp" || die "cannot remove $tmp"
  echo "sid-root.sh: making $root from $mirror (about 10 minutes; log: $log)" >&2
  debootstrap --variant=minbase sid "$tmp" "$mirror" >>"$log" 2>&1 ||
    die "debootstrap failed (see $log)"
  configure_apt "$mirror"
  install_packages >>"$log" 2>&1 || die "could not install islet's packages in the root (see $log)"
  touch "$tmp/$marker"
  mv "$tmp" "$root" || die "could not move $tmp to $root"
}

mkdir -p "$cache" || die "cannot create $cache"
[ "$(id -u)" -eq 0 ] || [ -f "$root/$marker" ] || die "making the root needs root (debootstrap, chroot)"
exec 9>"$cache/sid-root.lock"
flock 9 || die "cannot lock $cache/sid-root.lock"
if [ ! -f "$root/$marker" ]; then
  remove "$root" || die "cannot remove $root"
  : >"$log"
  make_root
fi
echo "$root"
