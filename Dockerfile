# One image for all of FleetPipe: the five services (fleetpipe-ingest, -enrichment, -detection,
# -notification, -storage-writer), the KPI stage (fleetpipe-kpis), the operator
# (fleetpipe-operator) and the load test
# (fleetpipe simulate). They are one Python distribution sharing fleetpipe.core and the generated
# protobuf code, so one image means one build, one dependency set to patch and one digest that
# the chart, the operator's FleetPipeline spec.image and skaffold all refer to; each Deployment
# only picks its command. The dependencies are most of the image, so separate images would
# mostly repeat the same layers.
#
#   docker build -t fleetpipe:0.1.0 .
#   docker run --rm fleetpipe:0.1.0 fleetpipe --help
#
# PYTHON_IMAGE is the base: the registry's slim Python image by default; `make image` passes a
# Python 3.11 image it made from Debian's packages where no registry can be reached. No
# `# syntax=` line: that would make the engine pull the Dockerfile frontend from a registry.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- build: compilers for the dependencies without wheels, a virtualenv to copy ------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/fleetpipe
WORKDIR /src
# Dependencies first: their layer is reused as long as pyproject and the pins do not change.
# README.md (the package's long description) comes with the sources: an edit to it must not
# reinstall every dependency.
COPY pyproject.toml ./
COPY requirements/constraints.txt requirements/constraints.txt
RUN python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' \
      > /tmp/requirements.txt \
 && /opt/fleetpipe/bin/pip install -c requirements/constraints.txt -r /tmp/requirements.txt
COPY README.md ./
COPY services services
COPY operator operator
COPY loadtest loadtest
RUN /opt/fleetpipe/bin/pip install -c requirements/constraints.txt . \
 && /opt/fleetpipe/bin/python -m compileall -q /opt/fleetpipe/lib

# ---- runtime: the virtualenv on a slim base, no compilers, a non-root user -----------------
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="fleetpipe" \
      org.opencontainers.image.description="FleetPipe services, operator and load test" \
      org.opencontainers.image.licenses="Apache-2.0"
# The uid/gid the chart and the operator's pod securityContext run as (runAsNonRoot needs a
# numeric USER to verify).
RUN groupadd --system --gid 10001 fleetpipe \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin fleetpipe
COPY --from=build /opt/fleetpipe /opt/fleetpipe
ENV PATH=/opt/fleetpipe/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001:10001
WORKDIR /tmp
# 8080: /healthz, /readyz and metrics of every service (FLEET_OBSERVABILITY__HTTP_PORT) and
# the operator's /healthz; 50051: ingest's gRPC.
EXPOSE 8080 50051
# For plain `docker run`; Kubernetes uses the Deployments' liveness/readiness probes instead.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"]
CMD ["fleetpipe", "--help"]
