# Python 3.11 from Debian's packages on the locally made Debian base: the project image's base
# where no registry can be reached (PYTHON_IMAGE of the project's Dockerfile).
ARG DEBIAN_IMAGE
FROM ${DEBIAN_IMAGE}
ENV LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive
# The CAs this machine adds to Debian's (a TLS-inspecting proxy in front of the package
# registries, say): the image's pip reaches PyPI the way the machine's does.
COPY extra-ca/ /usr/local/share/ca-certificates/
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv python-is-python3 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
# pip vendors its own CA bundle; the system one holds the CAs above.
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt
CMD ["python3"]
