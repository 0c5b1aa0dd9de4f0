# syntax=docker/dockerfile:1
# One image for the operator (`destinations operator`, the default) and the sync pods (`destinations worker`).
#
#   docker build -t ghcr.io/destinations-dev/destinations:0.1.0 .
#
# The runtime stage runs as a numeric non-root user (so `runAsNonRoot` can verify it without /etc/passwd)
# and writes nothing outside /tmp, so it works with `readOnlyRootFilesystem: true` and an emptyDir on /tmp.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/destinations
WORKDIR /src
# Dependencies first, so a code change does not reinstall them.
COPY pyproject.toml README.md ./
COPY operator/ operator/
RUN /opt/destinations/bin/pip install --upgrade pip \
 && /opt/destinations/bin/pip install . \
 && /opt/destinations/bin/python -m compileall -q /opt/destinations

FROM ${PYTHON_IMAGE} AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="destinations" \
      org.opencontainers.image.description="Kubernetes operator and sync worker for data-sync jobs between customer data and marketing tools" \
      org.opencontainers.image.source="https://github.com/destinations-dev/destinations" \
      org.opencontainers.image.url="https://github.com/destinations-dev/destinations" \
      org.opencontainers.image.documentation="https://github.com/destinations-dev/destinations#readme" \
      org.opencontainers.image.vendor="destinations-dev" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"
COPY --from=build /opt/destinations /opt/destinations
# Read-only root filesystem: no .pyc writes, unbuffered logs, and every writable path under /tmp
# (mounted as an emptyDir by the Deployment and by sync pods).
ENV PATH=/opt/destinations/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TMPDIR=/tmp \
    XDG_CACHE_HOME=/tmp/.cache
WORKDIR /tmp
USER 65532:65532
EXPOSE 8080 9090 9443
ENTRYPOINT ["destinations"]
CMD ["operator"]
