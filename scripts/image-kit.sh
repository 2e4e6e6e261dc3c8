# Sourced by the scripts that build images from this machine's own binaries (no registry is
# reachable): build-runtime-images.sh (function runtimes) and build-compose-images.sh (Dockhand,
# Redis and Prometheus for docker/compose.local.yml). Every image is `FROM scratch` plus files
# copied from the host with the libraries ldd names for them.

say() { echo "prepare: $*" >&2; }
die() { echo "dockhand: $*" >&2; exit 1; }

copy_libs() { # copy_libs ROOT FILE: every library ldd lists for FILE, at the same paths
  ldd "$2" 2>/dev/null | grep -oE '/[^ ]+' | while read -r lib; do
    [ -e "$1$lib" ] && continue
    mkdir -p "$1$(dirname "$lib")"
    cp -L "$lib" "$1$lib"
  done
}

copy_with_libs() { # copy_with_libs ROOT FILE...: each file and its libraries, at the same paths
  local root=$1; shift
  for f in "$@"; do
    mkdir -p "$root$(dirname "$f")"
    cp -L "$f" "$root$f"
    copy_libs "$root" "$f"
  done
}

node_rootfs() { # node_rootfs ROOT: the machine's node at /usr/bin/node (and where it really is)
  local node; node=$(readlink -f "$(command -v node)")
  copy_with_libs "$1" "$node"
  [ "$node" = /usr/bin/node ] || { mkdir -p "$1/usr/bin"; ln -sf "$node" "$1/usr/bin/node"; }
}

image_label() { # image_label IMAGE LABEL: the label's value, empty when the image is missing
  docker image inspect -f "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || true
}
