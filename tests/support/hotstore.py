"""A hot store filled by the real storage writer, for the query layer's and the console's tests.

Two fleets, ``fleet-a`` (three vehicles near Amsterdam) and ``fleet-b`` (two vehicles a degree
north), with telemetry of the last ten minutes and of five hours ago, alert episodes with their
transitions, trips, driver scores and dead letters, produced to Kafka and stored by a storage
writer process; notification outcomes are written by the notification service's own ledger.
:class:`Facts` says what went in, so a test checks an answer against the rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from pydantic import SecretStr

from fleetpipe.core.db import PostgresSettings
from fleetpipe.core.kafka import Admin
from fleetpipe.core.records import dead_letter_record
from fleetpipe.core.settings import KafkaSettings, Topics
from fleetpipe.core.topics import topic_specs
from fleetpipe.notification.ledger import Entry, Ledger, Status
from fleetpipe.notification.routing import Channel, Phase
from fleetpipe.pb.v1 import alert_pb2, deadletter_pb2, enriched_pb2, kpi_pb2, trip_pb2
from fleetpipe_dev.testing import (
    ServiceProcess,
    committed_total,
    end_offsets,
    produce_all,
    service_env,
    wait_for,
)
from fleetpipe_loadtest import records

S = 1_000_000  # µs per second
H = 3600 * S
RECENT_S = 600  # seconds of recent telemetry per vehicle


@dataclass(frozen=True)
class Facts:
    """What the dataset holds, as the tests check it."""

    now_us: int
    a_vehicles: tuple[str, ...]
    b_vehicles: tuple[str, ...]
    parked: str  # fleet-a, stopped with the ignition off
    idle: str  # fleet-a, stopped with the ignition on
    offline: str  # fleet-b, last heard five hours ago
    speeding_open: str  # fleet-a, OPEN then UPDATE, 5 min ago
    crash_resolved: str  # fleet-a, OPEN then RESOLVED, 2 h ago
    fuel_old_open: str  # fleet-a, OPEN, 30 h ago
    b_speeding_open: str  # fleet-b, OPEN, 10 min ago


@dataclass(frozen=True)
class HotStoreData:
    dsn: str
    schema: str
    kafka: KafkaSettings
    topics: Topics
    facts: Facts

    @property
    def settings(self) -> PostgresSettings:
        return PostgresSettings(dsn=SecretStr(self.dsn), schema_name=self.schema)

    def sql(self, query: str, *args: object) -> list[tuple[object, ...]]:
        with psycopg.connect(self.dsn, options=f"-c search_path={self.schema}") as conn:
            return conn.execute(query.encode(), args or None).fetchall()


def _telemetry(now: int) -> tuple[list[enriched_pb2.EnrichedTelemetry], dict[str, str]]:
    events: list[enriched_pb2.EnrichedTelemetry] = []
    names: dict[str, str] = {}
    for fleet, count, north in (("fleet-a", 3, 0.0), ("fleet-b", 2, 1.0)):
        for index in range(count):
            vehicle = records.enriched(index, 1, fleet=fleet).telemetry.vehicle_id
            offline = fleet == "fleet-b" and index == 1
            old_start = now - 5 * H
            # Every vehicle drove five hours ago (60 s); all but the offline one also now.
            times = [old_start + s * S for s in range(60)]
            if not offline:
                times += [now - (RECENT_S - s) * S for s in range(RECENT_S)]
            for seq, t in enumerate(times, start=1):
                e = records.enriched(index, seq, fleet=fleet, event_time_us=t)
                e.telemetry.location.lat += north
                if fleet == "fleet-a" and seq % 60 == 0:
                    e.telemetry.driving_events.add(kind=1)  # an intervention a minute
                last = seq == len(times)
                if last and fleet == "fleet-a" and index == 1:
                    e.telemetry.motion.speed_kmh = 0.0
                    e.telemetry.engine.ignition = False
                    names["parked"] = vehicle
                if last and fleet == "fleet-a" and index == 2:
                    e.telemetry.motion.speed_kmh = 0.0
                    names["idle"] = vehicle
                if offline:
                    names["offline"] = vehicle
                events.append(e)
    return events, names


def _alert(vehicle: str, rule: str, start: int, **kw: Any) -> alert_pb2.Alert:
    kw.setdefault("fleet_id", vehicle.split("-veh-", maxsplit=1)[0])
    return records.alert(vehicle, rule, episode_start_us=start, **kw)


# The KPI stage's windows (fleet.kpis.v1): (fleet, dimension, value, seconds before now the
# window ends, partition, vehicles, km, max km/h, speed sum, samples, alerts by rule).
KPI_WINDOW_S = 60
KpiPart = tuple[str, str, str, int, int, int, float, float, float, int, dict[str, int]]
KPI_PARTS: tuple[KpiPart, ...] = (
    ("fleet-a", "fleet", "fleet-a", 60, 0, 2, 4.0, 90.0, 1200.0, 20, {}),
    ("fleet-a", "fleet", "fleet-a", 60, 1, 1, 2.5, 70.0, 600.0, 10, {"speeding": 1}),
    ("fleet-a", "model", "Model-X", 60, 0, 2, 4.0, 90.0, 1200.0, 20, {}),
    ("fleet-a", "fleet", "fleet-a", 7200, 0, 1, 1.0, 50.0, 300.0, 10, {}),
    ("fleet-b", "fleet", "fleet-b", 60, 2, 2, 3.0, 80.0, 500.0, 10, {}),
)


def _kpis(now: int) -> list[kpi_pb2.FleetKpi]:
    found = []
    for fleet, dim, value, ago_s, part, vehicles, km, top, speed_sum, samples, alerts in KPI_PARTS:
        end = now - ago_s * S
        found.append(
            kpi_pb2.FleetKpi(
                window_start_us=end - KPI_WINDOW_S * S,
                window_end_us=end,
                fleet_id=fleet,
                dimension=dim,
                dimension_value=value,
                source_partition=part,
                active_vehicles=vehicles,
                distance_km=km,
                max_speed_kmh=top,
                speed_sum_kmh=speed_sum,
                speed_samples=samples,
                alerts_by_rule=alerts,
            )
        )
    return found


def writer_group(topics: Topics) -> str:
    return f"storage-{topics.enriched}"


def start_writer(
    kafka: KafkaSettings, topics: Topics, dsn: str, schema: str, workdir: Path
) -> ServiceProcess:
    """A storage writer process on the dataset's topics and schema (it resumes where the last
    one of the dataset stopped: same group)."""
    env = service_env(
        kafka,
        topics,
        {
            "FLEET_GROUP_ID": writer_group(topics),
            "FLEET_INSTANCE_ID": f"w-{uuid.uuid4().hex[:6]}",
            "FLEET_POSTGRES__DSN": dsn,
            "FLEET_POSTGRES__SCHEMA_NAME": schema,
            "FLEET_LAKE__ENABLED": "false",
            "FLEET_LATEST_INTERVAL_S": "0",
        },
    )
    return ServiceProcess("fleetpipe.storage_writer", env, workdir / f"writer-{schema}.log").start()


def fill(
    kafka: KafkaSettings, postgres_dsn: str, workdir: Path, *, timeout_s: float = 180.0
) -> Iterator[HotStoreData]:
    """Create topics and a schema, store the dataset through a writer process, yield it; the
    schema is dropped afterwards."""
    now = records.now_us()
    topics = Topics.with_suffix(uuid.uuid4().hex[:10])
    Admin(kafka).ensure_topics(topic_specs(topics, 3))
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"'.encode())

    telemetry, names = _telemetry(now)
    a0, a1, a2 = (records.enriched(i, 1, fleet="fleet-a").telemetry.vehicle_id for i in range(3))
    b0, b1 = (records.enriched(i, 1, fleet="fleet-b").telemetry.vehicle_id for i in range(2))
    speeding = _alert(
        a0, "speeding", now - 5 * 60 * S, values={"speed_kmh": 97.0, "limit_kmh": 80.0}
    )
    speeding_update = _alert(
        a0,
        "speeding",
        now - 5 * 60 * S,
        state=alert_pb2.ALERT_STATE_UPDATE,
        at_us=now - 4 * 60 * S,
        values={"speed_kmh": 104.0, "limit_kmh": 80.0},
    )
    crash_start = now - 2 * H
    crash = _alert(
        a1,
        "crash",
        crash_start,
        severity=alert_pb2.SEVERITY_CRITICAL,
        values={"accel_g": 6.1, "threshold_g": 4.0},
    )
    crash_resolved = _alert(
        a1,
        "crash",
        crash_start,
        severity=alert_pb2.SEVERITY_CRITICAL,
        state=alert_pb2.ALERT_STATE_RESOLVED,
        at_us=crash_start + 60 * S,
        values={"accel_g": 6.1, "threshold_g": 4.0},
    )
    fuel = _alert(a2, "low_fuel", now - 30 * H, values={"fuel_pct": 8.0, "threshold_pct": 10.0})
    b_speeding = _alert(
        b0,
        "speeding",
        now - 10 * 60 * S,
        fleet_id="fleet-b",
        values={"speed_kmh": 91.0, "limit_kmh": 80.0},
    )
    for a in (speeding, speeding_update, crash, crash_resolved, fuel, b_speeding):
        a.driver_id = f"drv-{a.vehicle_id}"
    trips = [
        records.trip(a0, now - 1 * H - 1800 * S, fleet_id="fleet-a"),
        records.trip(a0, now - 3 * H - 1800 * S, fleet_id="fleet-a"),
        records.trip(a0, now - 30 * H, fleet_id="fleet-a"),
        records.trip(b0, now - 2 * H - 1800 * S, fleet_id="fleet-b"),
        records.trip(a1, now - 600 * S, fleet_id="fleet-a", state=trip_pb2.TRIP_STATE_STARTED),
    ]
    scores = []
    for driver_vehicle, fleet, score, at in (
        (a0, "fleet-a", 55.0, now - 1 * H),
        (a0, "fleet-a", 95.0, now - 30 * H),
        (a1, "fleet-a", 80.0, now - 1 * H),
        (b0, "fleet-b", 70.0, now - 1 * H),
    ):
        s = records.driver_score(f"drv-{driver_vehicle}", driver_vehicle, at, score=score)
        s.fleet_id = fleet
        scores.append(s)
    dead = []
    for i, (reason, at) in enumerate(
        (
            ("undecodable", now - 60 * S),
            ("undecodable", now - 50 * S),
            ("invalid", now - 40 * S),
            ("invalid", now - 30 * H),
        )
    ):
        value, _ = dead_letter_record(
            reason=reason,
            error=f"{reason} record {i}",
            service="enrichment",
            key=f"k{i}".encode(),
            payload=b"\x08\x99garbage",
            source_topic=topics.raw,
            source_partition=0,
            source_offset=i,
        )
        letter = deadletter_pb2.DeadLetter.FromString(value)
        letter.time_us = at
        dead.append((f"k{i}", letter.SerializeToString()))

    produce_all(
        kafka, topics.enriched, ((e.telemetry.vehicle_id, e.SerializeToString()) for e in telemetry)
    )
    produce_all(
        kafka,
        topics.alerts,
        (
            (a.vehicle_id, a.SerializeToString())
            for a in (speeding, speeding_update, crash, crash_resolved, fuel, b_speeding)
        ),
    )
    produce_all(kafka, topics.trips, ((t.vehicle_id, t.SerializeToString()) for t in trips))
    produce_all(kafka, topics.scores, ((s.vehicle_id, s.SerializeToString()) for s in scores))
    produce_all(kafka, topics.deadletter, dead)
    produce_all(kafka, topics.kpis, ((k.fleet_id, k.SerializeToString()) for k in _kpis(now)))

    writer = start_writer(kafka, topics, postgres_dsn, schema, workdir)
    try:
        wanted = [
            topics.enriched,
            topics.alerts,
            topics.trips,
            topics.scores,
            topics.deadletter,
            topics.kpis,
        ]
        totals = {t: sum(end_offsets(kafka, t).values()) for t in wanted}

        def stored() -> bool:
            writer.check_alive()
            group = writer_group(topics)
            return all(committed_total(kafka, group, t) >= n for t, n in totals.items())

        wait_for(stored, timeout=timeout_s, interval=0.5, what=f"the writer to store {totals}")
    finally:
        writer.kill()

    settings = PostgresSettings(dsn=SecretStr(postgres_dsn), schema_name=schema)
    ledger = Ledger(settings, application_name="test-ledger")
    ledger.migrate()
    for alert, channel, status, error in (
        (speeding, Channel.SMS, Status.SENT, ""),
        (speeding, Channel.VOICE, Status.FAILED, "21211"),
        (crash, Channel.SMS, Status.SENT, ""),
        (b_speeding, Channel.SMS, Status.SENT, ""),
    ):
        entry = Entry(
            alert_id=alert.alert_id,
            phase=Phase.OPEN,
            channel=channel,
            status=Status.PENDING,
            vehicle_id=alert.vehicle_id,
            driver_id=alert.driver_id,
            driver_key=alert.driver_id,
            rule=alert.rule,
            severity="warning",
            to_address="+15550001111",
            from_address="+15550002222",
            reference=f"{alert.alert_id}/{channel.value}",
            alert_time_us=alert.episode_start_us,
        )
        ledger.record([entry])
        ledger.settle(
            entry.settled(
                status,
                error_code=error,
                attempts=1,
                provider_sid=f"SM{uuid.uuid4().hex}" if status is Status.SENT else None,
            )
        )
    ledger.close()

    facts = Facts(
        now_us=now,
        a_vehicles=(a0, a1, a2),
        b_vehicles=(b0, b1),
        parked=names["parked"],
        idle=names["idle"],
        offline=names["offline"],
        speeding_open=speeding.alert_id,
        crash_resolved=crash.alert_id,
        fuel_old_open=fuel.alert_id,
        b_speeding_open=b_speeding.alert_id,
    )
    try:
        yield HotStoreData(postgres_dsn, schema, kafka, topics, facts)
    finally:
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'.encode())
