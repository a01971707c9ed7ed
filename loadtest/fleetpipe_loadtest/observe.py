"""Watching a running pipeline from outside: Kafka offsets and topics, and the database.

Nothing here joins a consumer group: offsets are read with each group's id but without
subscribing, and topics are read by assigning partitions, so watching never rebalances the
services it watches. Every record and row is filtered to the run's vehicles (their ids share
the run's prefix), so a pipeline shared with other traffic, or earlier runs, is measured for
this run only.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import psycopg
from psycopg import sql

from fleetpipe.core.errors import KafkaError
from fleetpipe.core.kafka import build_admin
from fleetpipe.core.lag import PartitionLag, end_offsets, group_lag
from fleetpipe.core.readers import build_reader
from fleetpipe.core.settings import KafkaSettings
from fleetpipe.pb.v1 import alert_pb2, notification_pb2
from fleetpipe_loadtest.report import Latency

# Rules driven by processing time (a vehicle's silence), not by a triggering event's arrival:
# their ingest → alert time measures the rule's timeout, not the pipeline.
PROCESSING_TIME_RULES = frozenset({"offline"})

log = logging.getLogger(__name__)


class GroupLag:
    """A consumer group's committed offsets on its input topic, and the topic's end."""

    def __init__(self, kafka: KafkaSettings, group: str, topic: str) -> None:
        self.group = group
        self.topic = topic
        self._admin = build_admin(kafka, timeout_s=5)
        # Where the topic ended when watching began: records after it are this run's.
        try:
            self._start = sum(end_offsets(self._admin, topic).values())
        except KafkaError:
            self._start = 0
        self._ratio = 1.0

    def partitions(self) -> list[PartitionLag] | None:
        """The group's lag per partition; ``None`` when Kafka gives no answer this time."""
        try:
            return group_lag(self._admin, self.group, [self.topic])
        except KafkaError:
            return None  # the coordinator is moving or busy: no answer this time

    def committed(self) -> int:
        found = self.partitions()
        return -1 if found is None else sum(p.committed or 0 for p in found)

    def lag(self) -> int:
        found = self.partitions()
        return -1 if found is None else sum(p.lag for p in found)

    def lag_events(self, events_in: int) -> int:
        """The lag in events, for a topic whose records may be packs of many events.

        ``events_in`` is how many events the run has put on the topic so far (what ingest
        acknowledged); the run's records on the topic are counted from its end offsets, and
        their ratio (events per record so far) converts the group's lag in records. Per-event
        topics give a ratio of 1."""
        found = self.partitions()
        if found is None:
            return -1
        records = sum(p.end for p in found) - self._start
        if records > 0 and events_in > 0:
            self._ratio = max(1.0, events_in / records)
        return round(sum(p.lag for p in found) * self._ratio)

    def events_per_record(self) -> float:
        """The ratio the last :meth:`lag_events` found (1 before any record of the run)."""
        return self._ratio

    def close(self) -> None:
        """Nothing to release: the admin client holds no group membership."""


class _TopicTail:
    """Reads a topic from the ends it had when created (this run's records only)."""

    def __init__(self, kafka: KafkaSettings, topic: str, *, read_committed: bool) -> None:
        self._reader = build_reader(
            kafka,
            client_id="fleetpipe-loadtest",
            group_id="fleetpipe-loadtest-watch",
            read_committed=read_committed,
        )
        ends = end_offsets(build_admin(kafka, timeout_s=10), topic, read_committed=read_committed)
        self._reader.assign(topic, ends)

    def poll(self, *, max_records: int = 10_000) -> list[bytes]:
        out: list[bytes] = []
        while len(out) < max_records:
            msgs = self._reader.consume(2000, 0)
            if not msgs:
                break
            out.extend(v for m in msgs if m.error() is None and (v := m.value()) is not None)
        return out

    def close(self) -> None:
        self._reader.close()


@dataclass
class AlertTally:
    by_rule: dict[str, Counter[str]] = field(default_factory=dict)
    # (detected time as Unix seconds, ingest → detected in ms) of each OPEN alert
    latency: list[tuple[float, float]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(sum(c.values()) for c in self.by_rule.values())

    def as_dict(self) -> dict[str, dict[str, int]]:
        return {rule: dict(c) for rule, c in sorted(self.by_rule.items())}


class AlertWatcher(_TopicTail):
    """The alerts topic (committed transactions only, as downstream consumers see it)."""

    def __init__(self, kafka: KafkaSettings, topic: str, id_prefix: str) -> None:
        super().__init__(kafka, topic, read_committed=True)
        self.prefix = f"{id_prefix}-"
        self.tally = AlertTally()

    def update(self) -> AlertTally:
        for value in self.poll():
            alert = alert_pb2.Alert.FromString(value)
            if not alert.vehicle_id.startswith(self.prefix):
                continue
            state = alert_pb2.AlertState.Name(alert.state).removeprefix("ALERT_STATE_")
            self.tally.by_rule.setdefault(alert.rule, Counter())[state] += 1
            if (
                alert.state == alert_pb2.ALERT_STATE_OPEN
                and alert.ingest_time_us > 0
                and alert.rule not in PROCESSING_TIME_RULES
            ):
                ms = (alert.detected_time_us - alert.ingest_time_us) / 1000
                self.tally.latency.append((alert.detected_time_us / 1e6, ms))
        return self.tally


class NotificationWatcher(_TopicTail):
    """Delivery outcomes of this fleet's alerts, counted by status."""

    def __init__(self, kafka: KafkaSettings, topic: str, id_prefix: str) -> None:
        super().__init__(kafka, topic, read_committed=False)
        self.prefix = f"{id_prefix}-"
        self.by_status: Counter[str] = Counter()
        self.by_channel: Counter[str] = Counter()
        self._seen: set[tuple[str, int, int]] = set()

    def update(self) -> Counter[str]:
        for value in self.poll():
            out = notification_pb2.NotificationOutcome.FromString(value)
            if not out.vehicle_id.startswith(self.prefix):
                continue
            key = (out.alert_id, out.channel, out.status)
            if key in self._seen:
                continue  # a replayed outcome of the same delivery decision
            self._seen.add(key)
            status = notification_pb2.DeliveryStatus.Name(out.status)
            self.by_status[status.removeprefix("DELIVERY_STATUS_")] += 1
            if out.status == notification_pb2.DELIVERY_STATUS_SENT:
                channel = notification_pb2.Channel.Name(out.channel).removeprefix("CHANNEL_")
                self.by_channel[channel] += 1
        return self.by_status


class StoreProbe:
    """The telemetry rows of one run's vehicles in the hot store (PostgreSQL)."""

    def __init__(
        self, dsn: str, schema: str, fleet_id: str, id_prefix: str, days: tuple[date, date]
    ) -> None:
        self.dsn = dsn
        self.schema = schema
        self.fleet_id = fleet_id
        self.prefix = f"{id_prefix}-"
        self.days = days

    def _connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(
            self.dsn,
            options=f"-c search_path={self.schema}",
            connect_timeout=10,
            application_name="fleetpipe-loadtest",
        )

    def _where(self) -> sql.Composed:
        return sql.SQL(
            "fleet_id = {} AND starts_with(vehicle_id, {}) AND event_day BETWEEN {} AND {}"
        ).format(
            sql.Literal(self.fleet_id),
            sql.Literal(self.prefix),
            sql.Literal(self.days[0]),
            sql.Literal(self.days[1]),
        )

    def count(self) -> int | None:
        """The run's rows; None when the database does not answer (a restart), this time."""
        try:
            with self._connect() as conn:
                row = conn.execute(
                    sql.SQL("SELECT count(*) FROM telemetry WHERE {}").format(self._where())
                ).fetchone()
        except psycopg.OperationalError as exc:
            log.warning("counting the stored rows failed, asking again: %s", exc)
            return None
        return int(row[0]) if row else 0

    def per_vehicle(self) -> dict[str, tuple[int, int]]:
        """vehicle_id → (rows, distinct seqs)."""
        query = sql.SQL(
            "SELECT vehicle_id, count(*), count(DISTINCT seq) FROM telemetry WHERE {} "
            "GROUP BY vehicle_id"
        ).format(self._where())
        with self._connect() as conn:
            return {str(v): (int(r), int(d)) for v, r, d in conn.execute(query)}

    def latency(
        self, qs: tuple[float, ...]
    ) -> tuple[Latency, list[tuple[float, int, float, float]]]:
        """ingest → stored in ms: overall, and (stored second, rows, p50, p99) per second."""
        lat = sql.SQL("extract(epoch FROM stored_time - ingest_time) * 1000")
        where = sql.SQL("{} AND stored_time IS NOT NULL AND ingest_time IS NOT NULL").format(
            self._where()
        )
        overall = sql.SQL(
            "SELECT count(*), {pcts}, avg({lat}), max({lat}) FROM telemetry WHERE {where}"
        ).format(
            pcts=sql.SQL(", ").join(
                sql.SQL("percentile_cont({}) WITHIN GROUP (ORDER BY {})").format(
                    sql.Literal(q / 100), lat
                )
                for q in qs
            ),
            lat=lat,
            where=where,
        )
        series = sql.SQL(
            "SELECT floor(extract(epoch FROM stored_time)) AS s, count(*), "
            "percentile_cont(0.5) WITHIN GROUP (ORDER BY {lat}), "
            "percentile_cont(0.99) WITHIN GROUP (ORDER BY {lat}) "
            "FROM telemetry WHERE {where} GROUP BY 1 ORDER BY 1"
        ).format(lat=lat, where=where)
        with self._connect() as conn:
            row = conn.execute(overall).fetchone()
            rows = conn.execute(series).fetchall()
        assert row is not None
        n = int(row[0])
        values = [float(v) if v is not None else float("nan") for v in row[1:]]
        overall_ms = Latency(
            count=n,
            quantiles={f"p{q:g}": v for q, v in zip(qs, values, strict=False)} if n else {},
            mean=values[len(qs)] if n else float("nan"),
            max=values[len(qs) + 1] if n else float("nan"),
        )
        return overall_ms, [(float(s), int(c), float(a), float(b)) for s, c, a, b in rows]
