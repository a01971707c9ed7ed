# The chart's development PostgreSQL: Debian's postgresql-15 with an entry point that reads the
# same variables as the upstream image (POSTGRES_DB, POSTGRES_USER, POSTGRES_PASSWORD, PGDATA).
ARG DEBIAN_IMAGE
FROM ${DEBIAN_IMAGE}
ENV LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive
# uid/gid 999 as in the upstream image, which the chart runs as; made before the package so
# the package adopts it.
RUN groupadd --system --gid 999 postgres \
 && useradd --system --uid 999 --gid 999 --home-dir /var/lib/postgresql --shell /bin/sh postgres \
 && apt-get update \
 && apt-get install -y --no-install-recommends postgresql-15 \
 && rm -rf /var/lib/apt/lists/*
# The server's own binaries first: Debian's /usr/bin wrappers pick a cluster, which a container
# does not have.
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data
COPY postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint.sh
USER 999:999
ENTRYPOINT ["/usr/local/bin/postgres-entrypoint.sh"]
