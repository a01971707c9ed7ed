"""Session fixtures: one real Kafka broker, one real PostgreSQL and (for the tests that ask for
it) one Jaeger v2 for the whole run.

Each test gets its own topics and its own schema, so tests never see each other's data. Set
FLEET_TEST_KAFKA_BOOTSTRAP / FLEET_TEST_POSTGRES_DSN to use servers that are already running.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from fleetpipe.core.kafka import Admin
from fleetpipe.core.settings import KafkaSettings, Topics
from fleetpipe.core.topics import topic_specs
from fleetpipe_dev.stack.jaeger import JaegerServer, jaeger_binary
from fleetpipe_dev.stack.kafka import KafkaBroker, kafka_libs
from fleetpipe_dev.stack.mosquitto import MosquittoServer
from fleetpipe_dev.stack.objectstore import S3Server
from fleetpipe_dev.stack.postgres import PostgresServer
from fleetpipe_dev.stack.procs import free_port
from support.lakes import LakeLocations, S3Handle
from support.mqtt import MosquittoHandle
from support.servers import BrokerHandle, MakeTopics, PostgresHandle, Schema


@pytest.fixture(scope="session")
def workdir() -> Iterator[Path]:
    # Under /tmp so that the 'postgres' user (when tests run as root) can reach its folder.
    path = Path(tempfile.mkdtemp(prefix="fleetpipe-test-"))
    os.chmod(path, 0o755)
    yield path
    if not os.environ.get("FLEET_TEST_KEEP"):
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def kafka(workdir: Path) -> Iterator[BrokerHandle]:
    external = os.environ.get("FLEET_TEST_KAFKA_BOOTSTRAP")
    if external:
        yield BrokerHandle(None, external)
        return
    # With a SASL_SSL listener beside the plaintext one: SCRAM users and ACLs per service.
    broker = KafkaBroker(
        home=workdir / "kafka",
        port=free_port(),
        controller_port=free_port(),
        libs=kafka_libs(),
        sasl_port=free_port(),
    )
    handle = BrokerHandle(broker, broker.bootstrap)
    handle.start()
    yield handle
    if handle.pid is not None:
        broker.stop(handle.pid)


@pytest.fixture(scope="session")
def postgres(workdir: Path) -> Iterator[PostgresHandle]:
    external = os.environ.get("FLEET_TEST_POSTGRES_DSN")
    if external:
        yield PostgresHandle(None, external)
        return
    server = PostgresServer(workdir / "postgres", free_port())
    handle = PostgresHandle(server, server.dsn)
    handle.start()
    yield handle
    if handle.pid is not None:
        server.stop(handle.pid)


@pytest.fixture(scope="session")
def jaeger(workdir: Path) -> Iterator[JaegerServer]:
    """Jaeger v2 on free loopback ports; its binary missing is a setup error, never a skip."""
    server = JaegerServer(
        workdir / "jaeger",
        otlp_grpc_port=free_port(),
        otlp_http_port=free_port(),
        query_port=free_port(),
        query_grpc_port=free_port(),
        health_port=free_port(),
        binary=jaeger_binary(),
    )
    pid = server.start()
    yield server
    server.stop(pid)


@pytest.fixture(scope="session")
def mosquitto(workdir: Path) -> Iterator[MosquittoHandle]:
    """Mosquitto (Debian's package) on a free loopback port; tests add their devices."""
    server = MosquittoServer(workdir / "mosquitto", free_port(), secrets.token_urlsafe(24))
    handle = MosquittoHandle(server)
    handle.start()
    yield handle
    if handle.pid is not None:
        server.stop(handle.pid)


@pytest.fixture(scope="session")
def s3(workdir: Path) -> Iterator[S3Handle]:
    """An S3-compatible server (moto's, from PyPI) on a free loopback port; its credentials are
    in this process's environment, where the lake's S3 client and the services it starts
    read them."""
    server = S3Server(workdir / "s3", free_port())
    with pytest.MonkeyPatch.context() as env:
        for name, value in S3Server.credentials.items():
            env.setenv(name, value)
        pid = server.start()
        try:
            yield S3Handle(server)
        finally:
            server.stop(pid)


@pytest.fixture(params=["local", "s3"])
def lake_locations(request: pytest.FixtureRequest, tmp_path: Path) -> LakeLocations:
    """Lake locations for a test that runs twice: on local folders, then on S3 buckets."""
    if request.param == "s3":
        return LakeLocations("s3", tmp_path, request.getfixturevalue("s3"))
    return LakeLocations("local", tmp_path)


@pytest.fixture
def kafka_settings(kafka: BrokerHandle) -> KafkaSettings:
    return kafka.settings


@pytest.fixture
def make_topics(kafka: BrokerHandle) -> MakeTopics:
    """Create a fresh set of every pipeline topic, named for this test."""

    def make(partitions: int = 3) -> Topics:
        topics = Topics.with_suffix(uuid.uuid4().hex[:10])
        Admin(kafka.settings).ensure_topics(topic_specs(topics, partitions))
        return topics

    return make


@pytest.fixture
def topics(make_topics: MakeTopics) -> Topics:
    return make_topics(3)


@pytest.fixture
def pg_schema(postgres: PostgresHandle) -> Iterator[Schema]:
    """A schema of its own for one test, dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres.dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    yield Schema(postgres.dsn, name)
    try:
        with psycopg.connect(postgres.dsn, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    except psycopg.OperationalError:
        pass  # the test stopped the database; the whole cluster is thrown away at the end
