"""Prometheus metrics. Each process builds one :class:`Metrics` on its own registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_BATCH_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2000, 5000, 10000)


class Metrics:
    """The metrics every service shares; services add their own on the same registry."""

    def __init__(self, service: str, registry: CollectorRegistry | None = None) -> None:
        self.service = service
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.consumed = Counter(
            "fleetpipe_records_consumed", "Records consumed", ["topic"], registry=r
        )
        self.produced = Counter(
            "fleetpipe_records_produced", "Records produced", ["topic"], registry=r
        )
        self.deadletters = Counter(
            "fleetpipe_deadletters", "Records sent to the dead-letter topic", ["reason"], registry=r
        )
        self.rejected = Counter(
            "fleetpipe_events_rejected", "Events refused as invalid", ["reason"], registry=r
        )
        self.batch_size = Histogram(
            "fleetpipe_batch_size",
            "Records per processed batch",
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self.batch_seconds = Histogram(
            "fleetpipe_batch_seconds",
            "Time to process and commit one batch",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.transactions = Counter(
            "fleetpipe_transactions", "Kafka transactions by outcome", ["outcome"], registry=r
        )
        self.end_to_end = Histogram(
            "fleetpipe_end_to_end_latency_seconds",
            "From the event's ingest_time to this service's output",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.lag = Gauge(
            "fleetpipe_consumer_lag",
            "Records behind the high watermark",
            ["topic", "partition"],
            registry=r,
        )
        self.assigned = Gauge(
            "fleetpipe_assigned_partitions", "Partitions assigned to this consumer", registry=r
        )
