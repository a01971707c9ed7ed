# The chart's development Kafka broker: the jars the local stack runs (fetched from Maven Central
# into the cache), Debian's Java 17, and the two scripts the chart's StatefulSet calls.
ARG DEBIAN_IMAGE
FROM ${DEBIAN_IMAGE}
ENV LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless \
 && rm -rf /var/lib/apt/lists/*
# The chart runs the broker as uid 1000 (the upstream image's appuser).
RUN groupadd --gid 1000 appuser && useradd --uid 1000 --gid 1000 --no-create-home appuser
COPY libs /opt/kafka/libs
COPY kafka-storage.sh kafka-server-start.sh /opt/kafka/bin/
COPY log4j2.properties /opt/kafka/config/log4j2.properties
USER 1000:1000
CMD ["/opt/kafka/bin/kafka-server-start.sh", "/etc/kafka/server.properties"]
