#!/usr/bin/env bash
# Builds the console (console/, Preact + uPlot, bundled by Vite) into .build/console/, which
# api/plugins/console.ts serves at /console/. Rebuilt only when a source file, the lock file or
# this script changed (a hash stamp, like dh-init's); `--force` rebuilds anyway. Nothing is
# downloaded: Vite and the libraries come from node_modules.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "dockhand: $*" >&2; exit 1; }

out=.build/console
stamp=.build/console.sha256
sum=$( { find console -type f ! -name '*.md' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum; \
  sha256sum package-lock.json "$0"; } | sha256sum | cut -c1-32)

if [ "${1:-}" != --force ] && [ -f "$out/index.html" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$sum" ]; then
  exit 0
fi

[ -x node_modules/.bin/vite ] || die "vite is not installed (npm install), so the console cannot be built."
mkdir -p .build
node_modules/.bin/vite build --config console/vite.config.ts >&2 \
  || die "could not build the console (see Vite's message above); /console will answer 503."
echo "$sum" >"$stamp"
echo "prepare: built $out" >&2
