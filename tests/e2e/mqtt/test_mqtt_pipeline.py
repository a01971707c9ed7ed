"""MQTT devices through the pipeline on the real broker, Kafka and PostgreSQL: the same
enriched output as gRPC for the same input, and a bridge SIGKILLed under load losing nothing."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import psycopg
import pytest

from fleetpipe.core.settings import KafkaSettings, Topics
from fleetpipe.ingest.mqtt.topics import telemetry_topic
from fleetpipe.pb.v1 import enriched_pb2, ingest_pb2, ingest_pb2_grpc, telemetry_pb2
from fleetpipe.registry import write_csv
from fleetpipe_dev.stack.procs import free_port
from fleetpipe_dev.testing import (
    ServiceProcess,
    end_offsets,
    read_events,
    service_env,
    wait_for,
)
from fleetpipe_loadtest.fleet import Fleet
from fleetpipe_loadtest.records import now_us
from support.messages import decoded
from support.mqtt import DeviceFleet, MosquittoHandle, StartBridge, bridges, device_fleet_on
from support.servers import MakeTopics, Schema

pytestmark = pytest.mark.e2e


class Services:
    """Service processes a test started, each stopped (SIGTERM, exit 0) at the end."""

    def __init__(self, kafka: KafkaSettings, logs: Path) -> None:
        self.kafka = kafka
        self.logs = logs
        self.started: list[ServiceProcess] = []

    def start(self, name: str, module: str, topics: Topics, extra: dict[str, str]) -> None:
        env = service_env(self.kafka, topics, {"FLEET_INSTANCE_ID": name, **extra})
        proc = ServiceProcess(module, env, self.logs / f"{name}.log").start()
        self.started.append(proc)

    def wait_ready(self) -> None:
        def ready() -> bool:
            for p in self.started:
                p.check_alive()
            return all(p.ready() for p in self.started)

        wait_for(ready, timeout=120, interval=0.5, what="the services to be ready")

    def stop(self) -> None:
        for proc in self.started:
            if proc.alive():
                assert proc.stop() == 0, proc.log()[-3000:]


@pytest.fixture
def services(kafka_settings: KafkaSettings, tmp_path: Path) -> Iterator[Services]:
    run = Services(kafka_settings, tmp_path)
    yield run
    run.stop()


@pytest.fixture
def start_bridge(
    kafka_settings: KafkaSettings, mosquitto: MosquittoHandle, tmp_path: Path
) -> Iterator[StartBridge]:
    with bridges(kafka_settings, mosquitto, tmp_path) as start:
        yield start


def enrichment(services: Services, name: str, topics: Topics, registry: Path) -> None:
    services.start(
        name,
        "fleetpipe.enrichment",
        topics,
        {"FLEET_REGISTRY_PATH": str(registry), "FLEET_GROUP_ID": f"enrichment-{topics.raw}"},
    )


def test_qos1_events_reach_the_enriched_topic_exactly_as_grpc_events_do(
    mosquitto: MosquittoHandle,
    make_topics: MakeTopics,
    services: Services,
    start_bridge: StartBridge,
    kafka_settings: KafkaSettings,
    tmp_path: Path,
) -> None:
    fleet = device_fleet_on(mosquitto, vehicles=5)
    registry = tmp_path / "vehicles.csv"
    write_csv(fleet.vehicles, registry)
    by_grpc, by_mqtt = make_topics(3), make_topics(3)
    grpc_port = free_port()
    services.start(
        "ingest",
        "fleetpipe.ingest",
        by_grpc,
        {
            "FLEET_GRPC_HOST": "127.0.0.1",
            "FLEET_GRPC_PORT": str(grpc_port),
            "FLEET_AUTH__TOKENS": json.dumps({fleet.token: fleet.fleet_id}),
        },
    )
    enrichment(services, "enrichment-grpc", by_grpc, registry)
    enrichment(services, "enrichment-mqtt", by_mqtt, registry)
    services.wait_ready()
    start_bridge(by_mqtt)

    sim = Fleet(5, seed=5, fleet_id=fleet.fleet_id, start_time_us=now_us() - 4_000_000)
    ticks = [t.messages() for t in sim.run(4)]
    events = [e for tick in ticks for e in tick]
    stub = ingest_pb2_grpc.TelemetryIngestStub(grpc.insecure_channel(f"127.0.0.1:{grpc_port}"))
    auth = (("authorization", f"Bearer {fleet.token}"),)
    for n, tick in enumerate(ticks):
        ack = stub.Publish(ingest_pb2.TelemetryBatch(batch_id=n, events=tick), metadata=auth)
        assert ack.accepted == len(tick)
    for v in fleet.vehicles:
        device = fleet.device(v.vehicle_id)
        try:
            assert not device.connect().is_failure
            mine = [e for e in events if e.vehicle_id == v.vehicle_id]
            topic = telemetry_topic(fleet.fleet_id, v.vehicle_id)
            assert device.publish_many((topic, e.SerializeToString()) for e in mine) == 0
        finally:
            device.close()

    def enriched(topics: Topics) -> dict[tuple[str, int], enriched_pb2.EnrichedTelemetry]:
        def enough() -> dict[tuple[str, int], enriched_pb2.EnrichedTelemetry] | None:
            got = {}
            for m in read_events(kafka_settings, topics.enriched, idle_s=0.5):
                e = decoded(m, enriched_pb2.EnrichedTelemetry)
                # What differs by when it ran, not by what came in: the two clocks.
                e.telemetry.ingest_time_us = 0
                e.enriched_time_us = 0
                got[(e.telemetry.vehicle_id, e.telemetry.seq)] = e
            return got if len(got) >= len(events) else None

        return wait_for(enough, timeout=90, what=f"{len(events)} enriched events")

    from_grpc, from_mqtt = enriched(by_grpc), enriched(by_mqtt)
    assert len(from_mqtt) == len(events) == 20
    assert from_mqtt == from_grpc
    assert all(e.known for e in from_mqtt.values())


def stored(schema: Schema) -> list[tuple[str, int]]:
    with psycopg.connect(schema.dsn) as conn:
        rows = conn.execute(f'SELECT vehicle_id, seq FROM "{schema.name}".telemetry').fetchall()
    return [(str(v), int(s)) for v, s in rows]


def test_the_bridge_sigkilled_under_load_and_restarted_loses_nothing(
    mosquitto: MosquittoHandle,
    topics: Topics,
    pg_schema: Schema,
    services: Services,
    start_bridge: StartBridge,
    kafka_settings: KafkaSettings,
    tmp_path: Path,
) -> None:
    vehicles, ticks = 20, 60
    fleet: DeviceFleet = device_fleet_on(mosquitto, vehicles=vehicles)
    registry = tmp_path / "vehicles.csv"
    write_csv(fleet.vehicles, registry)
    enrichment(services, "enrichment", topics, registry)
    services.start(
        "storage-writer",
        "fleetpipe.storage_writer",
        topics,
        {
            "FLEET_POSTGRES__DSN": pg_schema.dsn,
            "FLEET_POSTGRES__SCHEMA_NAME": pg_schema.name,
            "FLEET_LAKE__PATH": str(tmp_path / "lake"),
            "FLEET_GROUP_ID": f"storage-{topics.raw}",
        },
    )
    services.wait_ready()
    bridge = start_bridge(topics, client_id="bridge-under-test")

    sim = Fleet(vehicles, seed=5, fleet_id=fleet.fleet_id, start_time_us=now_us() - ticks * 10**6)
    events: list[telemetry_pb2.Telemetry] = [e for t in sim.run(ticks) for e in t.messages()]
    devices = {v.vehicle_id: fleet.device(v.vehicle_id) for v in fleet.vehicles}
    n = len(events)
    thirds = [events[: n // 3], events[n // 3 : 2 * n // 3], events[2 * n // 3 :]]

    def raw_events() -> int:
        # Events, not records: the raw topic carries packs.
        return len(read_events(kafka_settings, topics.raw, idle_s=0.5))

    def raw_records() -> int:
        # Quick to ask, for seeing the bridge at work: it grows with every pack.
        return sum(end_offsets(kafka_settings, topics.raw).values())

    def publish(part: list[telemetry_pb2.Telemetry]) -> None:
        for vid, device in devices.items():
            topic = telemetry_topic(fleet.fleet_id, vid)
            mine = [(topic, e.SerializeToString()) for e in part if e.vehicle_id == vid]
            assert device.publish_many(mine) == 0

    try:
        for device in devices.values():
            assert not device.connect().is_failure
        publish(thirds[0])
        wait_for(
            lambda: raw_events() >= len(thirds[0]),
            timeout=60,
            what="the first third on the raw topic",
        )
        before = raw_records()
        # SIGKILLed while the second third streams in: it dies with messages in hand.
        sender = threading.Thread(target=publish, args=(thirds[1],))
        sender.start()
        wait_for(lambda: raw_records() > before, timeout=60, interval=0.02, what="the bridge busy")
        bridge.kill()
        at_kill = raw_events()
        sender.join(60)
        assert at_kill < len(thirds[0]) + len(thirds[1]), "the bridge was not killed mid-flight"
        publish(thirds[2])  # the broker queues these in the dead bridge's session
        restarted = start_bridge(topics, client_id="bridge-under-test")
        assert restarted.alive()
    finally:
        for device in devices.values():
            device.close()

    sent = sorted((e.vehicle_id, e.seq) for e in events)
    rows = wait_for(
        lambda: r if len(r := stored(pg_schema)) >= len(sent) else None,
        timeout=180,
        interval=1.0,
        what=f"{len(sent)} rows in PostgreSQL",
    )
    assert sorted(rows) == sent  # every (vehicle, seq) once: nothing lost, nothing twice
