"""A recorded input for the KPI stage, and the processes that carry it: enrichment, the KPI
stage and a storage writer, on the real broker and the real PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from fleetpipe.core.settings import KafkaSettings, Topics
from fleetpipe.pb.v1 import alert_pb2, telemetry_pb2
from fleetpipe.registry import Vehicle, write_csv
from fleetpipe_dev.testing import (
    ServiceProcess,
    committed_total,
    produce_all,
    service_env,
    wait_for,
)
from fleetpipe_loadtest.fleet import Fleet

FLEET = "fleet-k"
# Small windows, so a test sees many of them close: 20 s long, a new one every 5 s, emitted
# 10 s after their end; a partition quiet for 3 s lets its event time run with the clock.
WINDOW_S, HOP_S, LATENESS_S, IDLE_S = 20, 5, 10, 3.0


@dataclass
class Recorded:
    """The simulator's events in the order they reach the pipeline, and the alerts."""

    events: list[telemetry_pb2.Telemetry]  # as sent, the late ones where they arrive
    late: list[telemetry_pb2.Telemetry]  # within the allowed lateness: counted
    too_late: telemetry_pb2.Telemetry  # beyond it: dropped
    alerts: list[alert_pb2.Alert]
    registry: list[Vehicle]

    @property
    def counted(self) -> list[telemetry_pb2.Telemetry]:
        return [e for e in self.events if e is not self.too_late]


def record(*, vehicles: int = 12, seconds: int = 90) -> Recorded:
    """``seconds`` of a simulated fleet at 1 Hz, each event stamped by ingest 0.2 s after its
    event time; three events arrive 6 s late (flagged late, as ingest flags them), one 80 s
    late at the very end, and a few alerts open (and one resolves) along the way."""
    start_us = (int(time.time()) - 3600) * 1_000_000
    fleet = Fleet(vehicles, seed=11, fleet_id=FLEET, start_time_us=start_us)
    ticks = [tick.messages() for tick in fleet.run(seconds)]
    for tick in ticks:
        for event in tick:
            event.ingest_time_us = event.event_time_us + 200_000
    late = []
    for n, at in enumerate((25, 47, 66)):
        event = ticks[at].pop(n * 3)
        _arrives(event, ticks[at + 6])
        late.append(event)
    too_late = ticks[10].pop(1)
    _arrives(too_late, ticks[-1])
    events = [e for tick in ticks for e in tick]
    ids = [e.vehicle_id for e in ticks[0]]

    def event_of(vehicle: int, tick: int) -> tuple[str, int]:
        """A vehicle and the time of its own event in a tick."""
        vid = ids[vehicle]
        return vid, next(e.event_time_us for e in ticks[tick] if e.vehicle_id == vid)

    alerts = [
        _alert(*event_of(0, 12), "speeding"),
        _alert(*event_of(1, 40), "speeding"),
        _alert(*event_of(2, 41), "harsh_braking"),
        _alert(*event_of(3, 70), "low_fuel"),
        _alert(*event_of(0, 30), "speeding", state=alert_pb2.ALERT_STATE_RESOLVED),
    ]
    return Recorded(events, late, too_late, alerts, fleet.registry())


def _arrives(event: telemetry_pb2.Telemetry, tick: list[telemetry_pb2.Telemetry]) -> None:
    event.ingest_time_us = tick[0].event_time_us + 200_000
    event.late = True
    tick.append(event)


def _alert(
    vehicle: str, t_us: int, rule: str, *, state: int = alert_pb2.ALERT_STATE_OPEN
) -> alert_pb2.Alert:
    return alert_pb2.Alert(
        alert_id=f"{vehicle}:{rule}:{t_us}",
        vehicle_id=vehicle,
        fleet_id=FLEET,
        rule=rule,
        severity=alert_pb2.SEVERITY_WARNING,
        state=state,  # type: ignore[arg-type]
        episode_start_us=t_us,
        event_time_us=t_us,
        ingest_time_us=t_us,
        detected_time_us=t_us,
    )


@dataclass
class KpiRig:
    kafka: KafkaSettings
    topics: Topics
    dsn: str
    schema: str
    home: Path
    processes: dict[str, ServiceProcess] = field(default_factory=dict)

    @property
    def registry(self) -> Path:
        return self.home / "vehicles.csv"

    @property
    def kpi_group(self) -> str:
        return f"kpis-{self.topics.kpis}"

    def start_writer(self, vehicles: list[Vehicle]) -> None:
        write_csv(vehicles, self.registry)
        self._start(
            "writer",
            "fleetpipe.storage_writer",
            FLEET_GROUP_ID=f"storage-{self.topics.kpis}",
            FLEET_INSTANCE_ID="writer-0",
            FLEET_INPUTS='["kpis"]',
            FLEET_POSTGRES__DSN=self.dsn,
            FLEET_POSTGRES__SCHEMA_NAME=self.schema,
            FLEET_LAKE__ENABLED="false",
            FLEET_REGISTRY_PATH=str(self.registry),
            FLEET_REGISTRY_CHECK_INTERVAL_S="0.2",
        )

    def start_kpis(self, **env: str) -> ServiceProcess:
        return self._start(
            "kpis",
            "fleetpipe.kpis",
            FLEET_GROUP_ID=self.kpi_group,
            # The same instance id on every start: a restart fences what a killed one left.
            FLEET_INSTANCE_ID="kpis-0",
            FLEET_WINDOW_S=str(WINDOW_S),
            FLEET_HOP_S=str(HOP_S),
            FLEET_ALLOWED_LATENESS_S=str(LATENESS_S),
            FLEET_IDLE_S=str(IDLE_S),
            **env,
        )

    def enrich(self, events: list[telemetry_pb2.Telemetry], **env: str) -> None:
        """Every event through a real enrichment process onto the enriched topic."""
        proc = self._start(
            "enrichment",
            "fleetpipe.enrichment",
            FLEET_GROUP_ID=f"enrich-{self.topics.raw}",
            FLEET_INSTANCE_ID="enrichment-0",
            FLEET_REGISTRY_PATH=str(self.registry),
            **env,
        )
        sent = produce_all(
            self.kafka, self.topics.raw, ((e.vehicle_id, e.SerializeToString()) for e in events)
        )

        def done() -> bool:
            proc.check_alive()
            return committed_total(self.kafka, f"enrich-{self.topics.raw}", self.topics.raw) >= (
                sent
            )

        wait_for(done, timeout=120, what=f"enrichment to pass on {sent} events")
        proc.stop()

    def produce_alerts(self, alerts: list[alert_pb2.Alert]) -> None:
        """The alerts, read in by a KPI stage before any telemetry (it stops afterwards): the
        stage's watermark follows telemetry alone, and alerts trail their events."""
        proc = self.start_kpis()
        produce_all(
            self.kafka, self.topics.alerts, ((a.vehicle_id, a.SerializeToString()) for a in alerts)
        )

        def read() -> bool:
            proc.check_alive()
            return committed_total(self.kafka, self.kpi_group, self.topics.alerts) >= len(alerts)

        wait_for(read, timeout=120, what="the KPI stage to read the alerts")
        assert proc.stop() == 0

    def committed_events(self) -> int:
        return committed_total(self.kafka, self.kpi_group, self.topics.enriched)

    def _start(self, name: str, module: str, **env: str) -> ServiceProcess:
        proc = ServiceProcess(
            module,
            service_env(self.kafka, self.topics, {"FLEET_KAFKA__MAX_BATCH": "500", **env}),
            self.home / f"{name}.log",
        ).start()
        self.processes[name] = proc

        def ready() -> bool:
            proc.check_alive()
            return proc.ready()

        wait_for(ready, timeout=120, what=f"{name} ready")
        return proc

    def stop(self) -> None:
        for proc in self.processes.values():
            if proc.alive():
                proc.stop()

    def vehicles(self) -> int:
        """Rows of the vehicles table (0 before the writer has created it)."""
        try:
            return int(self.rows("SELECT count(*) FROM vehicles")[0][0])
        except psycopg.errors.UndefinedTable:
            return 0

    def rows(self, query: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))
            return conn.execute(query.encode()).fetchall()


def kpi_rig(
    kafka: KafkaSettings, topics: Topics, dsn: str, schema: str, home: Path
) -> Iterator[KpiRig]:
    rig = KpiRig(kafka, topics, dsn, schema, home)
    try:
        yield rig
    finally:
        rig.stop()
