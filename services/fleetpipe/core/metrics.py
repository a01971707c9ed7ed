"""Prometheus metrics. Each process builds one :class:`Metrics` on its own registry."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_BATCH_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2000, 5000, 10000)


class Instruments:
    """Declares metrics on one registry, each named ``<prefix>_<name>``.

    Every metric goes on the process's own registry (tests build one each, so two handlers in
    one test process never collide) and under one namespace: ``fleetpipe_`` for the shared ones,
    ``fleetpipe_<service>_`` for a service's own.
    """

    def __init__(self, registry: CollectorRegistry, prefix: str) -> None:
        self.registry = registry
        self.prefix = prefix

    def counter(self, name: str, doc: str, labels: Sequence[str] = ()) -> Counter:
        return Counter(f"{self.prefix}_{name}", doc, labels, registry=self.registry)

    def gauge(self, name: str, doc: str, labels: Sequence[str] = ()) -> Gauge:
        return Gauge(f"{self.prefix}_{name}", doc, labels, registry=self.registry)

    def histogram(self, name: str, doc: str, *, buckets: Sequence[float]) -> Histogram:
        return Histogram(f"{self.prefix}_{name}", doc, buckets=buckets, registry=self.registry)


class Metrics:
    """The metrics every service shares; services add their own on the same registry."""

    def __init__(self, service: str, registry: CollectorRegistry | None = None) -> None:
        self.service = service
        self.registry = registry or CollectorRegistry()
        m = Instruments(self.registry, "fleetpipe")
        self.consumed = m.counter(
            "records_consumed", "Records consumed (each event of a pack)", ["topic"]
        )
        self.produced = m.counter(
            "records_produced", "Events produced (each event of a pack counted)", ["topic"]
        )
        self.deadletters = m.counter(
            "deadletters", "Records sent to the dead-letter topic", ["reason"]
        )
        self.rejected = m.counter("events_rejected", "Events refused as invalid", ["reason"])
        self.batch_size = m.histogram(
            "batch_size", "Records per processed batch", buckets=_BATCH_BUCKETS
        )
        self.batch_seconds = m.histogram(
            "batch_seconds", "Time to process and commit one batch", buckets=_LATENCY_BUCKETS
        )
        self.transactions = m.counter("transactions", "Kafka transactions by outcome", ["outcome"])
        self.commits = m.counter(
            "offset_commits", "Commits of consumed offsets (in a transaction when exactly once)"
        )
        self.end_to_end = m.histogram(
            "end_to_end_latency_seconds",
            "From the event's ingest_time to this service's output",
            buckets=_LATENCY_BUCKETS,
        )
        self.lag = m.gauge(
            "consumer_lag", "Records behind the high watermark", ["topic", "partition"]
        )
        self.assigned = m.gauge("assigned_partitions", "Partitions assigned to this consumer")

    def observe_end_to_end(self, ingest_time_us: int | None, now: float) -> None:
        """One end-to-end latency sample: an event stamped by ingest, output at ``now``.

        An event without an ingest stamp (0 or null) gives none: it was never timed.
        """
        if ingest_time_us:
            self.end_to_end.observe(max(0.0, now - ingest_time_us / 1e6))
