# The `provided` function runtime (custom runtimes: the function's own executable `bootstrap`)
# for users with a registry (build from the repository root:
#   docker build -f docker/runtimes/provided.Dockerfile -t my-registry/dockhand-provided .
# and set RUNTIME_IMAGE_PROVIDED). Node runs the shim that serves the Lambda Runtime API on
# 127.0.0.1:9001; python3, sh, bash and env are there for script bootstraps, glibc for
# dynamically linked binaries. Without a registry, scripts/build-runtime-images.sh makes the
# same image FROM scratch out of this machine's binaries.
FROM node:20-slim
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3-minimal \
  && rm -rf /var/lib/apt/lists/*
COPY runtimes/provided/bootstrap.mjs /opt/dockhand/bootstrap.mjs
ENV HOME=/tmp
USER 65534:65534
WORKDIR /tmp
CMD ["/usr/bin/node", "/opt/dockhand/bootstrap.mjs"]
