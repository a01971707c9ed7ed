"""Helpers for running the detection service as real processes against the real broker."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import confluent_kafka
import pytest

from fleetpipe.core.settings import KafkaSettings, Topics
from fleetpipe.detection.config import Rules
from fleetpipe.detection.engine import Detector
from fleetpipe.pb.v1 import alert_pb2, enriched_pb2, trip_pb2
from fleetpipe_dev.testing import (
    ServiceProcess,
    committed_total,
    produce_all,
    read_all,
    service_env,
    wait_for,
)
from support.messages import decoded

Events = Sequence[enriched_pb2.EnrichedTelemetry]


@dataclass
class Detection:
    """Detection replicas of one consumer group, plus the records they were given."""

    kafka: KafkaSettings
    topics: Topics
    logs: Path
    group: str
    produced: int = 0
    processes: list[ServiceProcess] = field(default_factory=list)

    def start(self, instance: str, **env: str) -> ServiceProcess:
        extra = {
            "FLEET_GROUP_ID": self.group,
            "FLEET_INSTANCE_ID": instance,
            "FLEET_KAFKA__MAX_BATCH": "500",
            # Notice new partitions within seconds (the default is 30 s).
            "FLEET_KAFKA__METADATA_MAX_AGE_MS": "2000",
            **env,
        }
        proc = ServiceProcess(
            "fleetpipe.detection",
            service_env(self.kafka, self.topics, extra),
            self.logs / f"detection-{instance}.log",
        ).start()
        self.processes.append(proc)
        return proc

    def produce(self, events: Events) -> None:
        self.produced += produce_all(
            self.kafka,
            self.topics.enriched,
            ((e.telemetry.vehicle_id, e.SerializeToString()) for e in events),
        )

    def committed(self) -> int:
        try:
            return committed_total(self.kafka, self.group, self.topics.enriched)
        except confluent_kafka.KafkaException as exc:
            # A busy coordinator on a loaded machine: not an answer, ask again later.
            if exc.args[0].code() != confluent_kafka.KafkaError._TIMED_OUT:
                raise
            return 0

    def wait_processed(self, *, timeout: float = 180) -> None:
        def done() -> bool:
            for proc in self.processes:
                if proc.proc is not None and proc.proc.returncode is None:
                    proc.check_alive()
            return self.committed() >= self.produced

        wait_for(done, timeout=timeout, what=f"detection to commit {self.produced} records")

    def alerts(self) -> list[alert_pb2.Alert]:
        return [
            decoded(m, alert_pb2.Alert)
            for m in read_all(self.kafka, self.topics.alerts, read_committed=True)
        ]

    def trips(self) -> list[trip_pb2.Trip]:
        return [
            decoded(m, trip_pb2.Trip)
            for m in read_all(self.kafka, self.topics.trips, read_committed=True)
        ]

    def stop_all(self) -> None:
        for proc in self.processes:
            if proc.alive():
                proc.stop()


def assigned_partitions(proc: ServiceProcess) -> int:
    """The fleetpipe_assigned_partitions gauge of a running service (-1 when unreadable)."""
    status, text = proc.get("/metrics")
    found = re.search(r"^fleetpipe_assigned_partitions (\S+)$", text, re.MULTILINE)
    return int(float(found.group(1))) if status == 200 and found else -1


def expected_alerts(events: Iterable[enriched_pb2.EnrichedTelemetry]) -> Counter[tuple[str, int]]:
    """(alert_id, state) of an uninterrupted in-process run of the same detector."""
    out = Detector(Rules()).process([(e, 0) for e in events], now_us=0)
    return Counter(
        (a.alert_id, a.state) for a in (alert_pb2.Alert.FromString(v) for _, v in out.alerts)
    )


def said(alerts: Iterable[alert_pb2.Alert]) -> Counter[tuple[str, int]]:
    return Counter((a.alert_id, a.state) for a in alerts)


@pytest.fixture
def detection(
    kafka_settings: KafkaSettings, make_topics: Callable[..., Topics], tmp_path: Path
) -> Iterator[Callable[..., Detection]]:
    made: list[Detection] = []

    def make(partitions: int = 3) -> Detection:
        topics = make_topics(partitions)
        run = Detection(kafka_settings, topics, tmp_path, group=f"det-{topics.enriched}")
        made.append(run)
        return run

    yield make
    for run in made:
        run.stop_all()
