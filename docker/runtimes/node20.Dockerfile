# The node20 function runtime for users with a registry (build from the repository root:
#   docker build -f docker/runtimes/node20.Dockerfile -t my-registry/dockhand-node20 .
# and set RUNTIME_IMAGE_NODE20). Without a registry, scripts/build-runtime-images.sh makes the
# same image FROM scratch out of this machine's node.
FROM node:20-slim
COPY runtimes/node/bootstrap.mjs /opt/dockhand/bootstrap.mjs
ENV HOME=/tmp
USER 65534:65534
WORKDIR /tmp
CMD ["/usr/bin/node", "/opt/dockhand/bootstrap.mjs"]
