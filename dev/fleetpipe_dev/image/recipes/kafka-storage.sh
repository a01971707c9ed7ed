#!/bin/sh
# kafka-storage.sh as the Kafka distribution names it: the storage tool on the cached jars.
exec java ${KAFKA_HEAP_OPTS:--Xmx256m} -Djava.awt.headless=true \
  -Dlog4j2.configurationFile=/opt/kafka/config/log4j2.properties \
  -cp '/opt/kafka/libs/*' kafka.tools.StorageTool "$@"
