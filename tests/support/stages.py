"""Enrichment and detection as real processes on the real broker, fed raw telemetry.

The rules, the speed-limit table and the registry are files the test writes (as the operator's
ConfigMaps would be mounted); the alerts are read back from the alerts topic.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from fleetpipe.core.errors import GroupOffsetsUnavailable
from fleetpipe.core.kafka import build_admin
from fleetpipe.core.lag import group_lag
from fleetpipe.core.settings import KafkaSettings, Topics
from fleetpipe.pb.v1 import alert_pb2, telemetry_pb2
from fleetpipe.registry import Vehicle, write_csv
from fleetpipe_dev.testing import (
    ServiceProcess,
    committed_total,
    produce_all,
    read_all,
    service_env,
    wait_for,
)
from support.messages import decoded


def telemetry(vehicle: str, seq: int, *, speed: float, lat: float, lon: float, t_us: int) -> bytes:
    """One raw event: a vehicle at ``speed`` km/h at (lat, lon), engine running."""
    return telemetry_pb2.Telemetry(
        vehicle_id=vehicle,
        fleet_id="fleet-1",
        seq=seq,
        event_time_us=t_us,
        ingest_time_us=t_us,
        location=telemetry_pb2.Location(lat=lat, lon=lon, accuracy_m=4.0),
        motion=telemetry_pb2.Motion(speed_kmh=speed),
        engine=telemetry_pb2.Engine(
            rpm=2000, gear=4, fuel_pct=60.0, coolant_temp_c=90.0, ignition=True
        ),
    ).SerializeToString()


@dataclass
class Stages:
    """One enrichment and one detection process sharing a test's topics."""

    kafka: KafkaSettings
    topics: Topics
    home: Path
    processes: list[ServiceProcess] = field(default_factory=list)
    sent: int = 0

    @property
    def detection_group(self) -> str:
        return f"detect-{self.topics.enriched}"

    @property
    def rules_path(self) -> Path:
        return self.home / "rules.yaml"

    def start(
        self,
        *,
        vehicles: Iterable[Vehicle],
        limits: str,
        rules: str,
        rules_check_interval_s: float = 0.2,
    ) -> Stages:
        registry = self.home / "vehicles.csv"
        write_csv(list(vehicles), registry)
        (self.home / "limits.yaml").write_text(limits)
        self.rules_path.write_text(rules)
        common = {"FLEET_KAFKA__MAX_BATCH": "500"}
        self.processes = [
            ServiceProcess(
                "fleetpipe.enrichment",
                service_env(
                    self.kafka,
                    self.topics,
                    {
                        **common,
                        "FLEET_GROUP_ID": f"enrich-{self.topics.raw}",
                        "FLEET_INSTANCE_ID": "enrichment-0",
                        "FLEET_REGISTRY_PATH": str(registry),
                        "FLEET_SPEED_LIMITS_PATH": str(self.home / "limits.yaml"),
                    },
                ),
                self.home / "enrichment.log",
            ).start(),
            ServiceProcess(
                "fleetpipe.detection",
                service_env(
                    self.kafka,
                    self.topics,
                    {
                        **common,
                        "FLEET_GROUP_ID": self.detection_group,
                        "FLEET_INSTANCE_ID": "detection-0",
                        "FLEET_RULES_PATH": str(self.rules_path),
                        "FLEET_RULES_CHECK_INTERVAL_S": str(rules_check_interval_s),
                    },
                ),
                self.home / "detection.log",
            ).start(),
        ]

        def ready() -> bool:
            for proc in self.processes:
                proc.check_alive()
            return all(proc.ready() for proc in self.processes)

        wait_for(ready, timeout=120, what="enrichment and detection ready")
        return self

    @property
    def detection(self) -> ServiceProcess:
        return self.processes[1]

    def send(self, events: Iterable[tuple[str, bytes]]) -> None:
        self.sent += produce_all(self.kafka, self.topics.raw, events)

    def processed(self, *, timeout: float = 120) -> list[alert_pb2.Alert]:
        """Every alert, once detection has committed every event sent so far.

        Enrichment passes each event on once, in packs: it is done when its committed offsets
        on the raw topic add up to what was sent (one record an event there), and detection is
        done when its committed offsets are past the last record enrichment wrote to each
        partition. Nothing either still holds can add an alert after that.
        """

        def enriched() -> bool:
            for proc in self.processes:
                proc.check_alive()
            return committed_total(self.kafka, f"enrich-{self.topics.raw}", self.topics.raw) >= (
                self.sent
            )

        wait_for(enriched, timeout=timeout, what=f"enrichment to commit {self.sent} events")
        last: dict[int, int] = {}
        for m in read_all(self.kafka, self.topics.enriched, read_committed=True, idle_s=0.5):
            partition, offset = m.partition(), m.offset()
            assert partition is not None and offset is not None, "a consumed record has both"
            last[partition] = max(last.get(partition, -1), offset)
        admin = build_admin(self.kafka, timeout_s=10)

        def detected() -> bool:
            for proc in self.processes:
                proc.check_alive()
            try:
                found = group_lag(admin, self.detection_group, [self.topics.enriched])
            except GroupOffsetsUnavailable:
                return False
            committed = {p.partition: p.committed or 0 for p in found}
            return all(committed.get(p, 0) > offset for p, offset in last.items())

        wait_for(detected, timeout=timeout, what=f"detection to commit {self.sent} events")
        return [
            decoded(m, alert_pb2.Alert)
            for m in read_all(self.kafka, self.topics.alerts, read_committed=True, idle_s=0.5)
        ]

    def stop(self) -> None:
        for proc in self.processes:
            if proc.alive():
                proc.stop()
