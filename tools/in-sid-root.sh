#!/usr/bin/env bash
# in-sid-root.sh ROOT CMD...: runs CMD in the chroot ROOT (a root made by
# tools/sid-root.sh) with /proc, /dev and this repository (at /islet) mounted
# for the command's duration.  The mounts are made in a private mount
# namespace (unshare), so they are never seen outside it, and unmounted on
# exit (trap) so ROOT is left as it was.
set -uo pipefail
[ $# -ge 2 ] || { echo "usage: $0 ROOT CMD..." >&2; exit 2; }
root=$1
shift
repo=$(cd "$(dirname "$0")/.." && pwd)

if [ -z "${ISLET_IN_SID_NS:-}" ]; then
  exec env ISLET_IN_SID_NS=1 unshare --mount --propagation private -- "$0" "$root" "$@"
fi
unset ISLET_IN_SID_NS

mounted=()
cleanup() {
  local i
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -R "${mounted[i]}" 2>/dev/null; done
}
trap cleanup EXIT

# mnt TARGET MOUNT-ARGS...: mount under ROOT and remember it for cleanup.
mnt() {
  local target=$root$1
  shift
  mkdir -p "$target" && mount "$@" "$target" && mounted+=("$target")
}

mnt /proc -t proc proc || exit 1
mnt /dev --rbind /dev || exit 1
mnt /islet --bind "$repo" || exit 1
cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null
chroot "$root" env -i HOME=/root TERM="${TERM:-dumb}" PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  LANG=C.UTF-8 "$@"
