"""A principal that may not write what it produces, on the broker's SASL_SSL listener: the
producer says which right is missing in one line (no crash in a callback), and a service so
logged in stops at start, before anything is written.

``console`` may read (so describe) the enriched and alerts topics but write no topic at all: the
broker refuses it even an idempotent producer id (``CLUSTER_AUTHORIZATION_FAILED``), which the
library raises from ``flush()`` as a fatal error. ``storage-writer`` may read the enriched topic
but write only dead letters, so it may describe the enriched topic and not write it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fleetpipe.core.access import Principal
from fleetpipe.core.errors import KafkaRightMissing
from fleetpipe.core.kafka import build_producer
from fleetpipe.core.preflight import EXIT_KAFKA_REFUSED
from fleetpipe.core.settings import Topics
from fleetpipe_dev.stack.procs import free_port
from fleetpipe_dev.testing import ServiceProcess, read_all, service_env, wait_for
from support.ingest import TOKEN_A
from support.servers import BrokerHandle

pytestmark = pytest.mark.integration


def _nothing_written(kafka: BrokerHandle, *topics: str) -> None:
    for topic in topics:
        got = read_all(kafka.settings, topic, read_committed=False, idle_s=0.5)
        assert got == [], f"{len(got)} record(s) reached {topic}"


def test_a_producer_refused_a_producer_id_names_the_missing_right_and_writes_nothing(
    kafka: BrokerHandle, topics: Topics
) -> None:
    producer = build_producer(
        kafka.security.client_settings(Principal.CONSOLE.value), client_id="refused-test"
    )
    try:
        producer.produce(topics.enriched, b"reading", key=b"v-1")
        producer.produce(topics.alerts, b"alert", key=b"v-1")
        with pytest.raises(KafkaRightMissing) as refused:
            producer.flush(30)
    finally:
        producer.discard()
    message = str(refused.value)
    assert message.startswith("Kafka refused User:console a producer id"), message
    assert "CLUSTER_AUTHORIZATION_FAILED" in message, message
    assert "grant User:console WRITE" in message and "\n" not in message
    assert refused.value.principal == "User:console"
    _nothing_written(kafka, topics.enriched, topics.alerts)


def _exited(proc: ServiceProcess) -> tuple[int] | None:
    """The exit status (in a tuple: 0 is an answer too) once the process has ended."""
    return None if proc.alive() else (proc.stop(),)


def test_ingest_whose_principal_may_not_write_stops_at_start_and_says_so(
    kafka: BrokerHandle, topics: Topics, tmp_path: Path
) -> None:
    env = service_env(
        kafka.security.client_settings(Principal.CONSOLE.value),
        topics,
        {
            "FLEET_GRPC_HOST": "127.0.0.1",
            "FLEET_GRPC_PORT": str(free_port()),
            "FLEET_AUTH__TOKENS": json.dumps({TOKEN_A: "fleet-a"}),
        },
    )
    proc = ServiceProcess("fleetpipe.ingest", env, tmp_path / "ingest.log").start()
    try:
        [code] = wait_for(lambda: _exited(proc), timeout=60, what="ingest to stop")
    finally:
        proc.kill()
    log = proc.log()
    assert code == EXIT_KAFKA_REFUSED, log[-3000:]
    said = [line for line in log.splitlines() if "User:console" in line]
    assert len(said) == 1, log[-3000:]
    assert f"Kafka principal User:console may not write topic {topics.raw}" in said[0]
    assert f"grant User:console WRITE on {topics.raw}" in said[0]
    assert "Traceback" not in log
    _nothing_written(kafka, topics.raw, topics.deadletter)


def test_a_stage_whose_principal_may_read_but_not_write_its_output_stops_at_start(
    kafka: BrokerHandle, topics: Topics, tmp_path: Path
) -> None:
    # Enrichment logged in as the storage writer: it may read (so describe) the enriched topic,
    # not write it.
    user = Principal.STORAGE_WRITER.value
    env = service_env(kafka.security.client_settings(user), topics)
    proc = ServiceProcess("fleetpipe.enrichment", env, tmp_path / "enrichment.log").start()
    try:
        [code] = wait_for(lambda: _exited(proc), timeout=60, what="enrichment to stop")
    finally:
        proc.kill()
    log = proc.log()
    assert code == EXIT_KAFKA_REFUSED, log[-3000:]
    said = [line for line in log.splitlines() if "may not write" in line]
    assert len(said) == 1, log[-3000:]
    assert (
        f"Kafka principal User:{user} may not write topic {topics.enriched} "
        f"(its rights there: DESCRIBE, READ); grant User:{user} WRITE on {topics.enriched}"
    ) in said[0]
    assert "Traceback" not in log
    _nothing_written(kafka, topics.enriched, topics.deadletter)
