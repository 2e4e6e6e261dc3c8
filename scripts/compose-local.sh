#!/usr/bin/env bash
# docker-compose on a machine without a registry: docker/compose.yml with docker/compose.local.yml,
# after building (when changed) the images that file names and the function runtime images the
# workers start. Arguments go to docker-compose: `scripts/compose-local.sh up -d`, `… logs -f`,
# `… down`. The project is `dockhand` unless COMPOSE_PROJECT_NAME says otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v docker-compose >/dev/null 2>&1 \
  || { echo "dockhand: docker-compose is not installed (Debian: apt-get install docker-compose; scripts/prepare.sh does)." >&2; exit 1; }
case ${1:-} in
  up | create | run | start | restart)
    bash scripts/build-compose-images.sh
    bash scripts/build-runtime-images.sh
    ;;
esac
export COMPOSE_PROJECT_NAME=${COMPOSE_PROJECT_NAME:-dockhand}
exec docker-compose -f docker/compose.yml -f docker/compose.local.yml "$@"
