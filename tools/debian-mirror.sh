#!/usr/bin/env bash
# debian-mirror.sh: prints the Debian mirror URI this machine's own apt
# sources use for a Debian suite's main component, so that no mirror host is
# written into the repository.  Reads /etc/apt/sources.list and
# /etc/apt/sources.list.d/ (*.list one-line entries, *.sources deb822
# stanzas).  Exit 1, saying so, when there is none.
set -uo pipefail
etc=${APT_ETC:-/etc/apt}
suite_re='^(buster|bullseye|bookworm|trixie|forky|duke|sid|unstable|testing|stable|oldstable|experimental)(-updates|-backports|-proposed-updates)?$'

# one_line FILE: the URIs of FILE's "deb URI suite main..." lines.
one_line() {
  awk -v re="$suite_re" '
    $1 == "deb" {
      i = 2
      if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }  # [options]
      uri = $i; suite = $(i + 1); main = 0
      for (j = i + 2; j <= NF; j++) if ($j == "main") main = 1
      if (suite ~ re && main) print uri
    }' "$1"
}

# deb822 FILE: the URIs of FILE's stanzas of type deb, a Debian suite and
# component main (Enabled: no is skipped).
deb822() {
  awk -v re="$suite_re" '
    function flush(   n, s, k, u) {
      if (types ~ /(^| )deb( |$)/ && comps ~ /(^| )main( |$)/ && enabled != "no") {
        n = split(suites, s, " ")
        for (k = 1; k <= n; k++) if (s[k] ~ re) { split(uris, u, " "); print u[1]; break }
      }
      types = suites = comps = uris = enabled = ""
    }
    /^[ \t]*#/ { next }
    /^[ \t]*$/ { flush(); next }
    { key = tolower($1); sub(/:$/, "", key); val = $0; sub(/^[^:]*:[ \t]*/, "", val) }
    key == "types" { types = val } key == "suites" { suites = val }
    key == "components" { comps = val } key == "uris" { uris = val }
    key == "enabled" { enabled = tolower(val) }
    END { flush() }' "$1"
}

sources() {
  [ -f "$etc/sources.list" ] && one_line "$etc/sources.list"
  for f in "$etc"/sources.list.d/*.list; do [ -f "$f" ] && one_line "$f"; done
  for f in "$etc"/sources.list.d/*.sources; do [ -f "$f" ] && deb822 "$f"; done
}

uri=$(sources | grep -E '^(https?|ftp|file)://' | head -n 1)
if [ -z "$uri" ]; then
  echo "debian-mirror.sh: no Debian mirror (deb URI with a Debian suite, main) in $etc/sources.list{,.d}" >&2
  exit 1
fi
echo "${uri%/}"
