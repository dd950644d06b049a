#!/usr/bin/env bash
# install-check.sh BUILD_DIR: `meson install` works and an outside program
# builds against the installed islet with nothing but `pkg-config islet`.
set -eu
build=$1
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
meson install -C "$build" --no-rebuild --destdir "$dest" --quiet
pc=$(dirname "$(find "$dest" -name islet.pc | head -1)")
lib=$(dirname "$(find "$dest" -name 'libislet.so' | head -1)")
export PKG_CONFIG_PATH=$pc PKG_CONFIG_SYSROOT_DIR=$dest
cat >"$dest/user.c" <<'C'
#include <islet.h>
int main(void) {
  islet_runtime_t *rt = islet_runtime_new(NULL);
  islet_interp_t *in = islet_interp_new(rt);
  void *p = islet_malloc(in, 100);
  int ok = islet_owner(p) == in;
  islet_free(in, p);
  islet_runtime_destroy(rt);
  return ok ? 0 : 1;
}
C
# shellcheck disable=SC2046
cc "$dest/user.c" -o "$dest/user" $(pkg-config --cflags --libs islet)
LD_LIBRARY_PATH=$lib "$dest/user"
echo "installed islet builds and runs through pkg-config"
