"""A storage writer against the real broker and the real PostgreSQL, with a lake folder."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from google.protobuf.message import Message

from fleetpipe.core.settings import KafkaSettings, Topics
from fleetpipe_dev.testing import (
    ServiceProcess,
    committed_total,
    end_offsets,
    produce_all,
    service_env,
    wait_for,
)
from support.servers import Schema


@dataclass
class WriterRig:
    kafka: KafkaSettings
    topics: Topics
    dsn: str
    schema: str
    workdir: Path
    processes: list[ServiceProcess] = field(default_factory=list)

    @property
    def lake(self) -> Path:
        return self.workdir / "lake"

    @property
    def group(self) -> str:
        return f"storage-{self.topics.enriched}"

    def start(self, name: str = "w1", **extra: str) -> ServiceProcess:
        env = service_env(
            self.kafka,
            self.topics,
            {
                "FLEET_GROUP_ID": self.group,
                "FLEET_INSTANCE_ID": name,
                "FLEET_POSTGRES__DSN": self.dsn,
                "FLEET_POSTGRES__SCHEMA_NAME": self.schema,
                "FLEET_LAKE__PATH": str(self.lake),
                "FLEET_LATEST_INTERVAL_S": "0",
                **extra,
            },
        )
        proc = ServiceProcess("fleetpipe.storage_writer", env, self.workdir / f"{name}.log")
        self.processes.append(proc.start())
        return proc

    def produce(self, topic: str, messages: Iterable[Message], key: str = "vehicle_id") -> int:
        return produce_all(
            self.kafka,
            topic,
            ((getattr(m, key, None) or _vehicle(m), m.SerializeToString()) for m in messages),
        )

    def produce_raw(self, topic: str, items: Iterable[tuple[str, bytes]]) -> int:
        return produce_all(self.kafka, topic, items)

    def committed(self, topic: str | None = None) -> int:
        return committed_total(self.kafka, self.group, topic or self.topics.enriched)

    def wait_consumed(
        self, proc: ServiceProcess, topics: Iterable[str] | None = None, *, timeout: float = 120
    ) -> None:
        wanted = list(topics or [self.topics.enriched])
        totals = {t: sum(end_offsets(self.kafka, t).values()) for t in wanted}

        def done() -> bool:
            proc.check_alive()
            return all(self.committed(t) >= n for t, n in totals.items())

        wait_for(done, timeout=timeout, interval=0.5, what=f"the writer to consume {totals}")

    def sql(self, query: str, *args: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.dsn, options=f"-c search_path={self.schema}") as conn:
            return conn.execute(query.encode(), args or None).fetchall()

    def execute(self, statement: str) -> None:
        with psycopg.connect(self.dsn, options=f"-c search_path={self.schema}") as conn:
            conn.execute(statement.encode())

    def scalar(self, query: str, *args: Any) -> Any:
        return self.sql(query, *args)[0][0]


def _vehicle(message: Any) -> str:
    return str(message.telemetry.vehicle_id)


@pytest.fixture
def rig(
    kafka_settings: KafkaSettings, topics: Topics, pg_schema: Schema, tmp_path: Path
) -> Iterator[WriterRig]:
    rig = WriterRig(kafka_settings, topics, pg_schema.dsn, pg_schema.name, tmp_path)
    try:
        yield rig
    finally:
        for proc in rig.processes:
            proc.kill()
