#!/usr/bin/env bash
# Builds the function runtime images from this machine's own binaries, since no registry is
# reachable: `FROM scratch` plus the interpreter, the libraries ldd names, and our bootstrap.
# An image is rebuilt only when missing or when its bootstrap changed (label dockhand.bootstrap).
# Users with a registry can use docker/runtimes/*.Dockerfile instead (RUNTIME_IMAGE_* env).
set -euo pipefail
cd "$(dirname "$0")/.."

# say, die, copy_with_libs, node_rootfs, image_label
source scripts/image-kit.sh

build() { # build NAME BOOTSTRAP ROOTFS_FN
  local image=$1 bootstrap=$2 fill=$3
  local sha; sha=$(sha256sum "$bootstrap" | cut -c1-16)
  [ "$(image_label "$image" dockhand.bootstrap)" = "$sha" ] && return 0
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

provided_rootfs() { # custom runtimes: node serves them the Runtime API; scripts get sh, bash, env and python3
  node_rootfs "$1"
  python_rootfs "$1"
  local tool
  for tool in /bin/sh /bin/bash /usr/bin/env; do
    [ -e "$tool" ] && copy_with_libs "$1" "$(readlink -f "$tool")"
    [ "$(readlink -f "$tool")" = "$tool" ] || { mkdir -p "$1$(dirname "$tool")"; ln -sf "$(readlink -f "$tool")" "$1$tool"; }
  done
}

build "${RUNTIME_IMAGE_NODE20:-dockhand-runtime-node20:local}" runtimes/node/bootstrap.mjs node_rootfs
build "${RUNTIME_IMAGE_PYTHON3:-dockhand-runtime-python3:local}" runtimes/python/bootstrap.py python_rootfs
build "${RUNTIME_IMAGE_PROVIDED:-dockhand-runtime-provided:local}" runtimes/provided/bootstrap.mjs provided_rootfs
