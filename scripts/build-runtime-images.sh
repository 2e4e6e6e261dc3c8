#!/usr/bin/env bash
# Builds the function runtime images from this machine's own binaries, since no registry is
# reachable: `FROM scratch` plus the interpreter, the libraries ldd names, and our bootstrap.
# An image is rebuilt only when missing or when its bootstrap changed (label dockhand.bootstrap).
# Users with a registry can use docker/runtimes/*.Dockerfile instead (RUNTIME_IMAGE_* env).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "prepare: $*" >&2; }
die() { echo "dockhand: $*" >&2; exit 1; }

copy_with_libs() { # copy_with_libs ROOT FILE...: each file and every library ldd lists for it
  local root=$1; shift
  for f in "$@"; do
    mkdir -p "$root$(dirname "$f")"
    cp -L "$f" "$root$f"
    ldd "$f" 2>/dev/null | grep -oE '/[^ ]+' | while read -r lib; do
      [ -e "$root$lib" ] && continue
      mkdir -p "$root$(dirname "$lib")"
      cp -L "$lib" "$root$lib"
    done
  done
}

build() { # build NAME BOOTSTRAP ROOTFS_FN
  local image=$1 bootstrap=$2 fill=$3
  local sha; sha=$(sha256sum "$bootstrap" | cut -c1-16)
  local have; have=$(docker image inspect -f '{{ index .Config.Labels "dockhand.bootstrap" }}' "$image" 2>/dev/null || true)
  [ "$have" = "$sha" ] && return 0
  say "building runtime image $image"
  local ctx; ctx=$(mktemp -d)
  trap 'rm -rf "$ctx"' RETURN
  mkdir -p "$ctx/rootfs/tmp" "$ctx/rootfs/etc" "$ctx/rootfs/opt/dockhand"
  echo 'nobody:x:65534:65534:nobody:/tmp:/sbin/nologin' >"$ctx/rootfs/etc/passwd"
  echo 'nogroup:x:65534:' >"$ctx/rootfs/etc/group"
  cp "$bootstrap" "$ctx/rootfs/opt/dockhand/"
  "$fill" "$ctx/rootfs"
  cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM scratch
COPY rootfs/ /
ENV HOME=/tmp LANG=C.UTF-8 PATH=/usr/local/bin:/usr/bin:/bin
LABEL dockhand.bootstrap="$sha" dockhand.runtime="$image"
DOCKERFILE
  DOCKER_BUILDKIT=0 docker build -q -t "$image" "$ctx" >/dev/null 2>&1 || die "could not build $image (docker build failed)."
}

node_rootfs() {
  local node; node=$(readlink -f "$(command -v node)")
  copy_with_libs "$1" "$node"
  [ "$node" = /usr/bin/node ] || { mkdir -p "$1/usr/bin"; ln -sf "$node" "$1/usr/bin/node"; }
}

python_rootfs() {
  [ -x /usr/bin/python3.11 ] || [ -x /usr/bin/python3 ] || {
    say "installing python3 from Debian"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-minimal >/dev/null \
      || die "python3 is not installed and could not be; install Debian's python3-minimal."
  }
  local py; py=$(readlink -f /usr/bin/python3)
  local ver; ver=$(basename "$py")
  copy_with_libs "$1" "$py"
  ln -sf "$py" "$1/usr/bin/python3"
  mkdir -p "$1/usr/lib"
  cp -a "/usr/lib/$ver" "$1/usr/lib/" 
  rm -rf "$1/usr/lib/$ver/test" "$1/usr/lib/$ver/idlelib" "$1/usr/lib/$ver/tkinter" "$1/usr/lib/$ver/ensurepip"
  for so in "/usr/lib/$ver"/lib-dynload/*.so; do copy_with_libs "$1" "$so" 2>/dev/null || true; done
}

build "${RUNTIME_IMAGE_NODE20:-dockhand-runtime-node20:local}" runtimes/node/bootstrap.mjs node_rootfs
build "${RUNTIME_IMAGE_PYTHON3:-dockhand-runtime-python3:local}" runtimes/python/bootstrap.py python_rootfs
