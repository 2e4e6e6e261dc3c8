#!/usr/bin/env bash
# Builds the images docker/compose.local.yml runs, from this machine's own binaries, for a
# machine without a registry (as build-runtime-images.sh does for function runtimes):
#   dockhand:local             the machine's node, this checkout, its production node_modules,
#                              dh-init and the machine's iptables (workers write the egress rules)
#   dockhand-redis:local       the machine's redis-server and redis-cli
#   dockhand-prometheus:local  Debian's prometheus (the installed one, else the package's binary
#                              fetched with `apt-get download`, nothing installed)
# Each image is rebuilt only when what went into it changed (label dockhand.image). Arguments
# name the images to build (dockhand, redis, prometheus); none means all three. Image names
# can be changed with DOCKHAND_LOCAL_IMAGE, DOCKHAND_REDIS_IMAGE, DOCKHAND_PROMETHEUS_IMAGE.
set -euo pipefail
cd "$(dirname "$0")/.."

# say, die, copy_with_libs, node_rootfs, image_label
source scripts/image-kit.sh

LABEL=dockhand.image
kit_sum=$(cat scripts/image-kit.sh scripts/build-compose-images.sh | sha256sum | cut -c1-16)

ctx=''
trap '[ -z "$ctx" ] || rm -rf "$ctx"' EXIT

new_context() { # under .build, on the checkout's filesystem, so node_modules can be hard-linked
  [ -z "$ctx" ] || rm -rf "$ctx"
  mkdir -p .build
  ctx=$(mktemp -d .build/image.XXXXXX)
  mkdir -p "$ctx/rootfs/tmp" "$ctx/rootfs/etc"
  chmod 1777 "$ctx/rootfs/tmp"
  printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' 'node:x:1000:1000:node:/tmp:/sbin/nologin' \
    'nobody:x:65534:65534:nobody:/tmp:/sbin/nologin' >"$ctx/rootfs/etc/passwd"
  printf '%s\n' 'root:x:0:' 'node:x:1000:' 'nogroup:x:65534:' >"$ctx/rootfs/etc/group"
}

build_context() { # build_context IMAGE SUM DOCKERFILE_BODY
  printf 'FROM scratch\n%s\nLABEL %s="%s"\n' "$3" "$LABEL" "$2" >"$ctx/Dockerfile"
  local old; old=$(docker image inspect -f '{{.Id}}' "$1" 2>/dev/null || true)
  DOCKER_BUILDKIT=0 docker build -q -t "$1" "$ctx" >/dev/null 2>"$ctx.log" || {
    cat "$ctx.log" >&2; rm -f "$ctx.log"
    die "could not build $1 (docker build failed)."
  }
  rm -f "$ctx.log"
  # The build it replaces would stay as an untagged image at every change; a container still
  # running it keeps it (and this removal fails quietly).
  [ -z "$old" ] || [ "$old" = "$(docker image inspect -f '{{.Id}}' "$1")" ] || docker rmi "$old" >/dev/null 2>&1 || true
}

# The checkout's parts that run (the Dockerfile's COPY lines), and the packages of `npm ls
# --omit=dev`: what `npm ci --omit=dev` would install, without the registry.
APP_PARTS=(api core queues roles processors runtimes scripts tsconfig.json package.json package-lock.json)
prod_modules() { # npm ls exits non-zero on mere warnings (extraneous packages): its list counts
  { npm ls --omit=dev --all --parseable 2>/dev/null || true; } | sed -n "s|^$PWD/\(node_modules/\)|\1|p" | sort -u
}

iptables_files() { # the multi-call binary iptables resolves to, and its extensions
  local bin; bin=$(readlink -f "$(command -v iptables 2>/dev/null)" 2>/dev/null) || return 0
  [ -x "$bin" ] || return 0
  echo "$bin"
  local ext; for ext in /usr/lib/*-linux-gnu/xtables /usr/lib/xtables; do
    [ -d "$ext" ] && find "$ext" -name '*.so' | sort
  done
  return 0
}

build_dockhand() {
  local image=${DOCKHAND_LOCAL_IMAGE:-dockhand:local}
  bash scripts/build-exec-init.sh
  local modules; modules=$(prod_modules)
  [ -n "$modules" ] || die "npm ls found no production packages in node_modules; run npm ci first."
  local iptables; iptables=$(iptables_files)
  local sum; sum=$( {
    echo "$kit_sum"
    sha256sum "$(readlink -f "$(command -v node)")" .build/dh-init
    find "${APP_PARTS[@]}" -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
    echo "$modules"
    sha256sum node_modules/.package-lock.json 2>/dev/null || true
    [ -z "$iptables" ] || sha256sum $iptables
  } | sha256sum | cut -c1-16)
  [ "$(image_label "$image" "$LABEL")" = "$sum" ] && return 0
  say "building $image from this machine's node and this checkout"
  new_context
  local root=$ctx/rootfs
  node_rootfs "$root"
  mkdir -p "$root/app/.build" "$root/app/node_modules" "$root/run" "$root/root"
  cp -a "${APP_PARTS[@]}" "$root/app/"
  cp .build/dh-init "$root/app/.build/dh-init"
  local m
  while read -r m; do
    [ -e "$root/app/$m" ] && continue # inside a package copied already
    mkdir -p "$root/app/$(dirname "$m")"
    cp -al "$(readlink -f "$m")" "$root/app/$m" 2>/dev/null || cp -a "$(readlink -f "$m")" "$root/app/$m"
  done <<<"$modules"
  if [ -n "$iptables" ]; then
    local bin; bin=$(head -n 1 <<<"$iptables")
    # shellcheck disable=SC2086
    copy_with_libs "$root" $iptables
    mkdir -p "$root/usr/sbin"
    # The multi-call binary acts on its name: the host's backend (nft or legacy) comes along.
    for name in iptables iptables-restore ip6tables ip6tables-restore; do
      [ "/usr/sbin/$name" = "$bin" ] || ln -sf "$bin" "$root/usr/sbin/$name"
    done
    for f in /etc/protocols /etc/ethertypes; do [ -f "$f" ] && cp "$f" "$root/etc/"; done
  else
    say "no iptables on this machine: workers in $image cannot guard the egress and service networks"
  fi
  build_context "$image" "$sum" '
COPY rootfs/ /
ENV PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin HOME=/tmp LANG=C.UTF-8 NODE_ENV=production HOST=0.0.0.0
WORKDIR /app
USER 1000:1000
EXPOSE 3000
ENTRYPOINT ["node", "scripts/dockhand.js"]
CMD ["all"]'
}

build_redis() {
  local image=${DOCKHAND_REDIS_IMAGE:-dockhand-redis:local}
  command -v redis-server >/dev/null 2>&1 || die "redis-server is not installed (Debian: apt-get install redis-server)."
  local server cli; server=$(readlink -f "$(command -v redis-server)"); cli=$(readlink -f "$(command -v redis-cli)")
  local sum; sum=$( { echo "$kit_sum"; sha256sum "$server" "$cli"; } | sha256sum | cut -c1-16)
  [ "$(image_label "$image" "$LABEL")" = "$sum" ] && return 0
  say "building $image from this machine's redis-server"
  new_context
  local root=$ctx/rootfs
  mkdir -p "$root/usr/bin" "$ctx/data"
  # Named as called: Redis picks its mode from its name (redis-check-rdb is the same binary).
  cp "$server" "$root/usr/bin/redis-server"
  cp "$cli" "$root/usr/bin/redis-cli"
  copy_libs "$root" "$server"
  copy_libs "$root" "$cli"
  build_context "$image" "$sum" '
COPY rootfs/ /
COPY --chown=65534:65534 data/ /data/
ENV PATH=/usr/bin:/bin LANG=C.UTF-8
WORKDIR /data
VOLUME /data
USER 65534:65534
EXPOSE 6379
CMD ["redis-server"]'
}

prometheus_binary() { # the installed prometheus, else the one in Debian's package (downloaded once)
  if command -v prometheus >/dev/null 2>&1; then readlink -f "$(command -v prometheus)"; return; fi
  local dir=.build/debs
  if ! ls "$dir"/prometheus_*.deb >/dev/null 2>&1; then
    command -v apt-get >/dev/null 2>&1 || die "prometheus is not installed and apt-get is missing; install Prometheus."
    mkdir -p "$dir"
    say "downloading Debian's prometheus package (not installed: only its binary is used)"
    (cd "$dir" && apt-get download -qq prometheus >/dev/null 2>&1) \
      || { apt-get update -qq >/dev/null 2>&1 && (cd "$dir" && apt-get download -qq prometheus >/dev/null 2>&1); } \
      || die "Debian's prometheus package could not be downloaded (apt-get download prometheus)."
  fi
  local deb; deb=$(ls "$dir"/prometheus_*.deb | tail -n 1)
  if [ ! -x "$dir/root/usr/bin/prometheus" ] || [ "$deb" -nt "$dir/root/usr/bin/prometheus" ]; then
    rm -rf "$dir/root"
    dpkg-deb -x "$deb" "$dir/root" || die "$deb could not be unpacked."
    touch "$dir/root/usr/bin/prometheus"
  fi
  echo "$PWD/$dir/root/usr/bin/prometheus"
}

build_prometheus() {
  local image=${DOCKHAND_PROMETHEUS_IMAGE:-dockhand-prometheus:local}
  local bin; bin=$(prometheus_binary)
  local sum; sum=$( { echo "$kit_sum"; sha256sum "$bin" | cut -d' ' -f1; } | sha256sum | cut -c1-16)
  [ "$(image_label "$image" "$LABEL")" = "$sum" ] && return 0
  say "building $image from Debian's prometheus"
  new_context
  local root=$ctx/rootfs
  mkdir -p "$root/usr/bin" "$root/etc/prometheus" "$ctx/data"
  cp "$bin" "$root/usr/bin/prometheus"
  copy_libs "$root" "$bin"
  build_context "$image" "$sum" '
COPY rootfs/ /
COPY --chown=65534:65534 data/ /prometheus/
ENV PATH=/usr/bin:/bin LANG=C.UTF-8
WORKDIR /prometheus
VOLUME /prometheus
USER 65534:65534
EXPOSE 9090
ENTRYPOINT ["/usr/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]'
}

[ $# -gt 0 ] || set -- dockhand redis prometheus
for what in "$@"; do
  case $what in
    dockhand) build_dockhand ;;
    redis) build_redis ;;
    prometheus) build_prometheus ;;
    *) die "unknown image $what (dockhand, redis or prometheus)." ;;
  esac
done
