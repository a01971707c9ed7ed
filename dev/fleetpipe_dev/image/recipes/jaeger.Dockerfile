# The chart's development Jaeger: the Jaeger v2 binary built from its Go module (static), with
# its default all-in-one configuration (in-memory storage, OTLP on 4317/4318, the query API on
# 16686). Built from the module, it carries no UI assets: the console shows the traces; the
# upstream image (jaegertracing/jaeger) has the UI.
FROM scratch
COPY jaeger /jaeger
# As the upstream image: the all-in-one configuration listens on this host, not on localhost,
# so other pods (and the kubelet's probes) reach OTLP and the query API.
ENV JAEGER_LISTEN_HOST=0.0.0.0
USER 10001:10001
ENTRYPOINT ["/jaeger"]
