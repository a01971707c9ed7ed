"""An ingest server process on the session broker, with two fleets' tokens."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleetpipe.core.settings import KafkaSettings, Topics
from fleetpipe_dev.stack.procs import free_port
from fleetpipe_dev.testing import ServiceProcess, service_env, wait_for
from support.ingest import TOKEN_A, TOKEN_B, Ingest, StartIngest
from support.mqtt import DeviceFleet, MosquittoHandle, StartBridge, bridges, device_fleet_on


@pytest.fixture
def start_ingest(kafka_settings: KafkaSettings, tmp_path: Path) -> Iterator[StartIngest]:
    started: list[ServiceProcess] = []

    def start(topics: Topics, *, wait_ready: bool = True, **extra: str) -> Ingest:
        port = free_port()
        env = service_env(
            kafka_settings,
            topics,
            {
                "FLEET_GRPC_HOST": "127.0.0.1",
                "FLEET_GRPC_PORT": str(port),
                "FLEET_AUTH__TOKENS": json.dumps({TOKEN_A: "fleet-a", TOKEN_B: "fleet-b"}),
                **extra,
            },
        )
        proc = ServiceProcess("fleetpipe.ingest", env, tmp_path / f"ingest-{port}.log").start()
        started.append(proc)

        def ready() -> bool:
            proc.check_alive()
            return proc.ready()

        if wait_ready:
            wait_for(ready, timeout=60, what="ingest to be ready")
        else:
            wait_for(lambda: proc.get("/readyz")[0] != 0, timeout=60, what="ingest to answer")
        return Ingest(proc, f"127.0.0.1:{port}", topics)

    yield start
    for proc in started:
        if proc.alive():
            # Ingest's shutdown waits up to 30 s for records Kafka has not confirmed (a test
            # may leave some stuck on purpose), after up to grace_s for calls in progress.
            assert proc.stop(timeout=60) == 0, proc.log()[-3000:]


@pytest.fixture
def ingest(start_ingest: StartIngest, topics: Topics) -> Ingest:
    return start_ingest(topics)


@pytest.fixture
def device_fleet(mosquitto: MosquittoHandle) -> DeviceFleet:
    """A fleet of its own for this test (three vehicles), with accounts on the broker."""
    return device_fleet_on(mosquitto)


@pytest.fixture
def start_bridge(
    kafka_settings: KafkaSettings, mosquitto: MosquittoHandle, tmp_path: Path
) -> Iterator[StartBridge]:
    """MQTT bridge processes in a shared-subscription group of this test's own."""
    with bridges(kafka_settings, mosquitto, tmp_path) as start:
        yield start
