#!/usr/bin/env bash
# Builds dh-init, the static entrypoint of exec containers (runtimes/exec-init/dh-init.c), to
# .build/dh-init with the machine's gcc and static libc. Rebuilt only when the source (or this
# script) changed; never downloads anything. Safe to run from several processes at once: the
# binary is written under a temporary name and renamed into place.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "dockhand: $*" >&2; exit 1; }

src=runtimes/exec-init/dh-init.c
out=${EXEC_INIT_BUILD:-.build/dh-init}
flags=(-static -Os -s -Wall -Wextra -Werror -D_FORTIFY_SOURCE=2 -fstack-protector-strong)
sum=$( { cat "$src"; echo "${flags[*]}"; } | sha256sum | cut -c1-32)

[ -x "$out" ] && [ "$(cat "$out.sha256" 2>/dev/null)" = "$sum" ] && exit 0

command -v gcc >/dev/null 2>&1 || die "gcc is needed to build $out (Debian: apt-get install gcc libc6-dev)."
mkdir -p "$(dirname "$out")"
tmp=$(mktemp "$out.XXXXXX")
trap 'rm -f "$tmp" "$tmp.log"' EXIT
gcc "${flags[@]}" -o "$tmp" "$src" 2>"$tmp.log" || {
  cat "$tmp.log" >&2; rm -f "$tmp.log"
  die "could not build $out from $src (needs gcc and a static libc: Debian's libc6-dev)."
}
rm -f "$tmp.log"
chmod 0755 "$tmp"
mv -f "$tmp" "$out"
echo "$sum" >"$out.sha256"
echo "prepare: built $out" >&2
