"""The enrichment service on the real broker: registry reloads, unknown vehicles, bad fixes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fleetpipe.core.records import DL_REASON
from fleetpipe.core.settings import KafkaSettings, RuntimeSettings, Topics
from fleetpipe.pb.v1 import deadletter_pb2, enriched_pb2, telemetry_pb2
from fleetpipe.registry import Vehicle, write_csv
from fleetpipe_dev.testing import (
    ServiceProcess,
    produce_all,
    read_all,
    read_events,
    service_env,
    wait_for,
)
from fleetpipe_loadtest import synthetic
from support.messages import decoded, headers_of

pytestmark = pytest.mark.integration


def _metric(proc: ServiceProcess, name: str) -> float:
    _, text = proc.get("/metrics")
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else -1.0


def _events(vehicle: str, first_seq: int, n: int) -> list[telemetry_pb2.Telemetry]:
    out = []
    for seq in range(first_seq, first_seq + n):
        t = synthetic.telemetry(1, seq)
        t.vehicle_id = vehicle
        out.append(t)
    return out


def _enriched(
    kafka: KafkaSettings, topics: Topics, count: int
) -> list[enriched_pb2.EnrichedTelemetry]:
    def enough() -> list[enriched_pb2.EnrichedTelemetry]:
        msgs = read_events(kafka, topics.enriched, read_committed=True, idle_s=0.5)
        return (
            [decoded(m, enriched_pb2.EnrichedTelemetry) for m in msgs] if len(msgs) >= count else []
        )

    return wait_for(enough, timeout=90, what=f"{count} enriched records")


def test_registry_edits_apply_without_restart_and_unknown_vehicles_pass(
    kafka_settings: KafkaSettings, topics: Topics, tmp_path: Path
) -> None:
    registry = tmp_path / "vehicles.csv"
    write_csv([Vehicle("known-1", "fleet-1", "van", "Transit", "d-1", "Ann")], registry)
    env = service_env(
        kafka_settings,
        topics,
        {
            "FLEET_REGISTRY_PATH": str(registry),
            "FLEET_REGISTRY_CHECK_INTERVAL_S": "0.2",
            "FLEET_GROUP_ID": f"enrich-{topics.raw}",
            "FLEET_INSTANCE_ID": "enrich-test",
        },
    )
    proc = ServiceProcess("fleetpipe.enrichment", env, tmp_path / "enrichment.log").start()

    def ready() -> bool:
        proc.check_alive()
        return proc.ready()

    try:
        wait_for(ready, timeout=90, what="enrichment ready")
        young = RuntimeSettings().gc_threshold
        assert f"garbage collector: young threshold {young}" in proc.log(), "core.runtime applied"
        first = _events("known-1", 1, 5) + _events("newcomer", 1, 7)
        produce_all(
            kafka_settings, topics.raw, ((t.vehicle_id, t.SerializeToString()) for t in first)
        )
        out = _enriched(kafka_settings, topics, 12)
        by_vehicle = {e.telemetry.vehicle_id: e for e in out}
        assert by_vehicle["known-1"].known and by_vehicle["known-1"].vehicle.driver_id == "d-1"
        stranger = by_vehicle["newcomer"]
        assert not stranger.known
        assert stranger.vehicle.fleet_id == "fleet-1", "the device's fleet travels on"
        assert stranger.geohash6 and stranger.speed_limit_kmh == 80
        assert {e.telemetry.SerializeToString() for e in out} == {
            t.SerializeToString() for t in first
        }
        wait_for(
            lambda: _metric(proc, "fleetpipe_enrichment_unknown_vehicle_events_total") == 7,
            timeout=30,
            what="the unknown-vehicle counter",
        )

        # The newcomer is registered: the running process picks it up.
        write_csv(
            [
                Vehicle("known-1", "fleet-1", "van", "Transit", "d-1", "Ann"),
                Vehicle("newcomer", "fleet-1", "truck", "Actros", "d-9", "Bo"),
            ],
            registry,
        )
        wait_for(
            lambda: _metric(proc, 'fleetpipe_enrichment_registry_reloads_total{outcome="ok"}') == 1,
            timeout=30,
            what="the registry reload",
        )
        pid = proc.pid
        produce_all(
            kafka_settings,
            topics.raw,
            ((t.vehicle_id, t.SerializeToString()) for t in _events("newcomer", 8, 3)),
        )
        later = [e for e in _enriched(kafka_settings, topics, 15) if e.telemetry.seq >= 8]
        assert [(e.known, e.vehicle.driver_id, e.vehicle.vehicle_type) for e in later] == [
            (True, "d-9", "truck")
        ] * 3
        assert proc.pid == pid and proc.alive(), "no restart"

        # A broken edit is refused and the last good registry stays.
        registry.write_text("vehicle_id,fleet_id,vehicle_type\nbad id,,spaceship\n")
        wait_for(
            lambda: (
                _metric(proc, 'fleetpipe_enrichment_registry_reloads_total{outcome="failed"}') == 1
            ),
            timeout=30,
            what="the refused reload",
        )
        produce_all(
            kafka_settings,
            topics.raw,
            ((t.vehicle_id, t.SerializeToString()) for t in _events("newcomer", 11, 1)),
        )
        [last] = [e for e in _enriched(kafka_settings, topics, 16) if e.telemetry.seq == 11]
        assert last.known and last.vehicle.driver_id == "d-9"
    finally:
        assert proc.stop() == 0


def test_unplaceable_events_are_dead_lettered_and_the_rest_enriched(
    kafka_settings: KafkaSettings, topics: Topics, tmp_path: Path
) -> None:
    env = service_env(
        kafka_settings,
        topics,
        {"FLEET_GROUP_ID": f"enrich-{topics.raw}", "FLEET_INSTANCE_ID": "enrich-bad"},
    )
    proc = ServiceProcess("fleetpipe.enrichment", env, tmp_path / "enrichment.log").start()
    try:
        events = _events("v-1", 1, 4)
        events[2].location.lat = 123.0
        produce_all(
            kafka_settings, topics.raw, ((t.vehicle_id, t.SerializeToString()) for t in events)
        )
        out = _enriched(kafka_settings, topics, 3)
        assert sorted(e.telemetry.seq for e in out) == [1, 2, 4]
        [dead] = wait_for(
            lambda: read_all(kafka_settings, topics.deadletter, idle_s=0.5),
            timeout=30,
            what="the dead letter",
        )
        assert headers_of(dead)[DL_REASON] == b"invalid"
        letter = decoded(dead, deadletter_pb2.DeadLetter)
        assert "location.lat 123.0" in letter.error
        assert telemetry_pb2.Telemetry.FromString(letter.payload).seq == 3
    finally:
        assert proc.stop() == 0
