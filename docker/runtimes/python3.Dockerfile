# The python3 function runtime for users with a registry (set RUNTIME_IMAGE_PYTHON3). The
# bootstrap is started as /usr/bin/python3, so the interpreter is linked there.
FROM python:3.12-slim
RUN ln -sf /usr/local/bin/python3 /usr/bin/python3
COPY runtimes/python/bootstrap.py /opt/dockhand/bootstrap.py
ENV HOME=/tmp
USER 65534:65534
WORKDIR /tmp
CMD ["/usr/bin/python3", "-u", "/opt/dockhand/bootstrap.py"]
