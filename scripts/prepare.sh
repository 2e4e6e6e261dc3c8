#!/usr/bin/env bash
# What `npm start` and `npm test` run first: makes npm deps, a Redis and a Docker engine
# available, installing only from npm and Debian's packages. Idempotent and silent when
# everything is already there; one sentence and a non-zero exit when something cannot be had.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "prepare: $*" >&2; }
die() { echo "dockhand: $*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo "$@"
  else return 1; fi
}

apt_updated=0
apt_install() {
  command -v apt-get >/dev/null 2>&1 || return 1
  if [ "$apt_updated" = 0 ]; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null || return 1
    apt_updated=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# 1. npm dependencies, when missing or older than the lock file.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm dependencies"
  # npm 11 leaves other platforms' optional packages out of the lock file it writes, and
  # then its own `npm ci` calls that lock out of sync; `npm install` honours the same
  # pinned versions and accepts it.
  npm ci --no-audit --no-fund --loglevel=silent >&2 2>/dev/null \
    || npm install --no-audit --no-fund --loglevel=error >&2 \
    || die "npm could not install the dependencies; check that the npm registry is reachable."
fi

# Reads REDIS_URL and DOCKER_HOST the way Dockhand will (and stops here on a bad value).
# A failed probe has printed its one line already.
probe() { local state; state=$(node --import tsx scripts/probe.ts) || exit 2; eval "$state"; }
probe

# 2. Redis: the one REDIS_URL names, else a local redis-server started here.
if [ "$REDIS_UP" != 1 ]; then
  [ "$REDIS_LOCAL" = 1 ] || die "Redis at $REDIS_SHOWN does not answer; start it or set REDIS_URL to one that does."
  if ! command -v redis-server >/dev/null 2>&1; then
    say "installing redis-server from Debian"
    apt_install redis-server || die "redis-server is not installed and could not be (needs root and apt); install Redis or set REDIS_URL."
  fi
  mkdir -p "$DATA_DIR/redis"
  say "starting redis-server on port $REDIS_PORT (append-only file in $DATA_DIR/redis)"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$DATA_DIR/redis" \
    --appendonly yes --save '' --logfile "$DATA_DIR/redis/redis.log" >/dev/null
  for _ in $(seq 1 50); do probe; [ "$REDIS_UP" = 1 ] && break; sleep 0.2; done
  [ "$REDIS_UP" = 1 ] || die "redis-server did not start; see $DATA_DIR/redis/redis.log."
fi

# 3. Docker: the engine DOCKER_HOST names, else dockerd from Debian's docker.io started here.
if [ "$DOCKER_UP" != 1 ]; then
  [ "$DOCKER_LOCAL" = 1 ] || die "The Docker engine at DOCKER_HOST does not answer; start it or unset DOCKER_HOST."
  if ! command -v dockerd >/dev/null 2>&1; then
    say "installing docker.io from Debian"
    apt_install docker.io || die "dockerd is not installed and could not be (needs root and apt); install docker.io or set DOCKER_HOST."
  fi
  as_root true || die "dockerd must run as root; start a Docker engine or set DOCKER_HOST."
  say "starting dockerd (log: /var/log/dockhand-dockerd.log)"
  as_root sh -c 'nohup dockerd >/var/log/dockhand-dockerd.log 2>&1 &'
  for _ in $(seq 1 60); do probe; [ "$DOCKER_UP" = 1 ] && break; sleep 0.5; done
  [ "$DOCKER_UP" = 1 ] || die "dockerd did not start; see /var/log/dockhand-dockerd.log."
fi

# 4. Function runtime images, built from this machine's binaries when missing or outdated.
bash scripts/build-runtime-images.sh

# 5. dh-init, the static entrypoint of exec containers, built with gcc and a static libc.
static_libc() { command -v gcc >/dev/null 2>&1 && [ -e "$(gcc -print-file-name=libc.a)" ]; }
if ! static_libc; then
  say "installing gcc and libc6-dev from Debian (to build the exec init helper)"
  apt_install gcc libc6-dev || die "gcc and a static libc (Debian's libc6-dev) are needed to build .build/dh-init; install them."
fi
bash scripts/build-exec-init.sh

# 6. The console (/console), bundled by Vite from console/ when missing or when its sources changed.
bash scripts/build-console.sh

# 7. promtool (Debian's prometheus package), for the test that checks docker/prometheus/ and the
# Grafana dashboard's queries; not needed to run Dockhand, so `npm start` skips it and a failed
# install only warns. Only the tool is wanted: where no policy-rc.d holds it back, the package
# starts a Prometheus server at install, which is stopped again here.
if [ "${npm_lifecycle_event:-}" != prestart ] && ! command -v promtool >/dev/null 2>&1; then
  say "installing prometheus from Debian (for promtool)"
  if apt_install prometheus; then
    if [ -f /run/prometheus/prometheus.pid ]; then
      as_root start-stop-daemon --stop --quiet --oknodo --remove-pidfile \
        --pidfile /run/prometheus/prometheus.pid --exec /usr/bin/prometheus || true
    fi
  else
    say "promtool could not be installed (needs root and apt): test/integration/dashboards.test.ts will fail."
  fi
fi

# 8. Debian's docker-compose (1.29), for docker/compose.yml's test (skipped without it); `npm start` needs none.
if [ "${npm_lifecycle_event:-}" != prestart ] && ! command -v docker-compose >/dev/null 2>&1; then
  say "installing docker-compose from Debian"
  apt_install docker-compose \
    || say "docker-compose could not be installed (needs root and apt); the compose test will be skipped."
fi

# 9. Debian's awscli (2.x), for the Lambda API's CLI test (skipped without it); `npm start` needs none.
if [ "${npm_lifecycle_event:-}" != prestart ] && [ ! -x /usr/bin/aws ]; then
  say "installing awscli from Debian"
  apt_install awscli \
    || say "awscli could not be installed (needs root and apt); the Lambda API's CLI test will be skipped."
fi

# 10. Debian's chromium, for the console's browser test (driven by playwright-core, which never
# downloads a browser here); `npm start` needs none, and without it that test is skipped.
if [ "${npm_lifecycle_event:-}" != prestart ] && [ ! -x /usr/bin/chromium ]; then
  say "installing chromium from Debian (for the console's browser test)"
  apt_install chromium \
    || say "chromium could not be installed (needs root and apt); the console's browser test will be skipped."
fi
