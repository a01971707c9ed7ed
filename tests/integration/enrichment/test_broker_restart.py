"""The broker goes away under load and comes back: the exactly-once stages ride it through.

Enrichment and detection run as processes against a broker of this module's own (killing the
session's broker would break every other test), fed at a steady rate. The broker is killed,
stopped for a minute, or restarted gracefully; each time both stages must be back under 2 s
of lag within 30 s of the broker serving again, as the same processes, and every output must
be there exactly once.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import confluent_kafka
import pytest

from fleetpipe.core.errors import KafkaError
from fleetpipe.core.kafka import PARTITIONER, Admin, build_admin
from fleetpipe.core.lag import group_lag
from fleetpipe.core.settings import KafkaSettings, Topics
from fleetpipe.core.topics import topic_specs
from fleetpipe.detection.config import Rules
from fleetpipe.detection.engine import Detector
from fleetpipe.pb.v1 import alert_pb2, enriched_pb2
from fleetpipe_dev.stack.kafka import KafkaBroker, kafka_libs
from fleetpipe_dev.stack.procs import free_port
from fleetpipe_dev.testing import ServiceProcess, read_all, read_events, service_env, wait_for
from fleetpipe_loadtest import synthetic
from support.messages import decoded

pytestmark = pytest.mark.integration

RATE = 600  # events/s: steady input the two stages keep up with on a shared two-core machine
VEHICLES = 60
RECOVERY_LIMIT_S = 30.0
# The synthetic speed climbs from 40 to 69 km/h and drops back every 30 events: above 60 each
# vehicle speeds once a cycle, so detection opens and resolves alerts all along.
RULES = """
speeding: {threshold_kmh: 60, use_zone_limit: false, hysteresis_kmh: 0,
           min_duration_s: 0, clear_after_s: 0}
"""
LAG_LIMIT_S = 2.0


@dataclass
class Broker:
    broker: KafkaBroker
    pid: int | None = None

    @property
    def settings(self) -> KafkaSettings:
        return KafkaSettings(bootstrap_servers=self.broker.bootstrap)

    def start(self) -> float:
        """Start the broker; returns the moment it serves."""
        if self.pid is None:
            self.pid = self.broker.start()
        return time.monotonic()

    def stop(self, *, kill: bool) -> None:
        assert self.pid is not None
        self.broker.stop(self.pid, kill=kill)
        self.pid = None


@pytest.fixture(scope="module")
def own_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    home = tmp_path_factory.mktemp("own-kafka")
    handle = Broker(
        KafkaBroker(home=home, port=free_port(), controller_port=free_port(), libs=kafka_libs())
    )
    handle.start()
    yield handle
    if handle.pid is not None:
        handle.stop(kill=False)


@dataclass
class Feeder:
    """Produces telemetry at a steady rate on a thread, through any broker outage."""

    kafka: KafkaSettings
    topic: str
    sent: list[tuple[str, int]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Feeder:
        self._thread = threading.Thread(target=self._run, name="feeder", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> int:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(120)
        return len(self.sent)

    def _run(self) -> None:
        producer = confluent_kafka.Producer(
            {
                **self.kafka.client_config(),
                "enable.idempotence": True,
                "linger.ms": 20,
                "partitioner": PARTITIONER,
                # Records produced while the broker is away wait for it, however long.
                "delivery.timeout.ms": 600_000,
                "log_level": 0,
            }
        )
        seq = [0] * VEHICLES
        tick = 0.1
        per_tick = int(RATE * tick)
        started = time.monotonic()
        n = 0
        while not self._stop.is_set():
            for _ in range(per_tick):
                v = n % VEHICLES
                seq[v] += 1
                event = synthetic.telemetry(v, seq[v])
                producer.produce(self.topic, event.SerializeToString(), event.vehicle_id)
                self.sent.append((event.vehicle_id, seq[v]))
                n += 1
            producer.poll(0)
            time.sleep(max(0.0, started + n / RATE - time.monotonic()))  # the feed's rate
        assert producer.flush(300) == 0, "every input record reaches the broker"


class Probe:
    """The test's own view of the broker: one consumer for end offsets and one admin client for
    committed offsets, made once. A client made and destroyed for every sample while the broker
    restarts is what librdkafka aborts on, taking the test process with it."""

    def __init__(self, kafka: KafkaSettings) -> None:
        self._consumer = confluent_kafka.Consumer(
            {**kafka.client_config(), "group.id": "fleetpipe-probe", "log_level": 0}
        )
        self._admin = build_admin(kafka, timeout_s=10)

    def end_total(self, topic: str) -> int | None:
        try:
            md = self._consumer.list_topics(topic, timeout=1)
            return sum(
                self._consumer.get_watermark_offsets(
                    confluent_kafka.TopicPartition(topic, p), timeout=1
                )[1]
                for p in md.topics[topic].partitions
            )
        except confluent_kafka.KafkaException:
            return None

    def committed(self, group: str, topic: str) -> int | None:
        try:
            lags = group_lag(self._admin, group, [topic])
        except (confluent_kafka.KafkaException, KafkaError):
            return None  # the broker or the group's coordinator is not answering yet
        return sum(p.committed or 0 for p in lags)

    def close(self) -> None:
        self._consumer.close()


@dataclass
class Stage:
    name: str
    proc: ServiceProcess
    group: str
    input_topic: str


def _lag_s(probe: Probe, stage: Stage, ends: list[tuple[float, int]]) -> float:
    """How far behind its input the stage's committed offsets are, in seconds: the age of
    the newest end-offset sample the stage has not reached yet."""
    done = probe.committed(stage.group, stage.input_topic)
    if done is None:
        return float("inf")
    behind = [t for t, end in ends if end > done]
    return time.monotonic() - min(behind) if behind else 0.0


# What says where a stage waited after the broker came back: the loop's own warnings and
# librdkafka's lines, less the connection attempts that fill an outage.
_NOISE = ("Connect to ipv4", "Disconnected", "holding a batch")


def _timeline(stages: list[Stage], broker_log: Path) -> str:
    """The stages' and the broker's lines that tell a slow recovery apart: kept in the failure
    message, since the test's directory is gone by the time anyone reads a CI run."""
    parts = []
    for stage in stages:
        lines = [
            line for line in stage.proc.log().splitlines() if not any(n in line for n in _NOISE)
        ]
        parts.append(f"--- {stage.name}\n" + "\n".join(lines[-60:]))
    broker = [
        line
        for line in broker_log.read_text(errors="replace").splitlines()
        if any(
            t in line
            for t in (
                "Enabling request processing",
                "unfenced",
                "Shutdown",
                # Markers the coordinator skipped: a transaction left open in its partitions.
                "likely deleted",
            )
        )
    ]
    parts.append("--- broker\n" + "\n".join(broker[-20:]))
    return "\n".join(parts)


def _start_stages(kafka: KafkaSettings, topics: Topics, logs: Path, rules: Path) -> list[Stage]:
    enrich_group, detect_group = f"enrich-{topics.raw}", f"det-{topics.enriched}"
    enrichment = ServiceProcess(
        "fleetpipe.enrichment",
        service_env(
            kafka,
            topics,
            {"FLEET_GROUP_ID": enrich_group, "FLEET_INSTANCE_ID": "enrich-outage"},
        ),
        logs / "enrichment.log",
    ).start()
    detection = ServiceProcess(
        "fleetpipe.detection",
        service_env(
            kafka,
            topics,
            {
                "FLEET_GROUP_ID": detect_group,
                "FLEET_INSTANCE_ID": "detect-outage",
                # Each batch stays open a while after its outputs are produced: the outage
                # lands inside a transaction.
                "FLEET_HOLD_MS": "100",
                "FLEET_RULES_PATH": str(rules),
            },
        ),
        logs / "detection.log",
    ).start()
    return [
        Stage("enrichment", enrichment, enrich_group, topics.raw),
        Stage("detection", detection, detect_group, topics.enriched),
    ]


@pytest.mark.parametrize(
    ("kill", "down_s"),
    [
        pytest.param(True, 0.0, id="sigkill-and-restart"),
        pytest.param(True, 60.0, id="stopped-for-60s"),
        pytest.param(False, 0.0, id="graceful-restart"),
    ],
)
def test_exactly_once_stages_ride_through_a_broker_outage_in_process(
    own_broker: Broker, tmp_path: Path, kill: bool, down_s: float
) -> None:
    kafka = own_broker.settings
    topics = Topics.with_suffix(uuid.uuid4().hex[:10])
    Admin(kafka).ensure_topics(topic_specs(topics, 3))
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    stages = _start_stages(kafka, topics, tmp_path, rules)
    feeder = Feeder(kafka, topics.raw).start()
    probe = Probe(kafka)
    try:
        for stage in stages:

            def committing(s: Stage = stage) -> bool:
                s.proc.check_alive()
                return (probe.committed(s.group, s.input_topic) or 0) > 0

            wait_for(
                committing,
                timeout=120,
                what=f"{stage.name} to commit",
            )
        pids = [s.proc.pid for s in stages]
        # Steady state: every stage commits again, so transactions open and commit continuously.
        first = {s.name: probe.committed(s.group, s.input_topic) or 0 for s in stages}
        wait_for(
            lambda: all(
                (probe.committed(s.group, s.input_topic) or 0) > first[s.name] for s in stages
            ),
            timeout=60,
            what="every stage committing again",
        )

        own_broker.stop(kill=kill)
        readiness: Counter[str] = Counter()
        down_until = time.monotonic() + down_s
        while time.monotonic() < down_until or not readiness:
            for stage in stages:
                readiness[f"{stage.name}: {stage.proc.get('/readyz')[1].strip()}"] += 1
            time.sleep(1)  # the outage lasts down_s: the scenario, sampled once a second
        serving = own_broker.start()

        ends: dict[str, list[tuple[float, int]]] = {s.input_topic: [] for s in stages}
        recovered: dict[str, float] = {}
        deadline = serving + RECOVERY_LIMIT_S + 5
        while len(recovered) < len(stages) and time.monotonic() < deadline:
            now = time.monotonic()
            for topic, samples in ends.items():
                end = probe.end_total(topic)
                if end is not None:
                    samples.append((now, end))
            for stage in stages:
                stage.proc.check_alive()
                readiness[f"{stage.name}: {stage.proc.get('/readyz')[1].strip()}"] += 1
                if (
                    stage.name not in recovered
                    and now - serving > LAG_LIMIT_S
                    and _lag_s(probe, stage, ends[stage.input_topic]) < LAG_LIMIT_S
                ):
                    recovered[stage.name] = time.monotonic() - serving
            time.sleep(0.25)  # the period at which the recovery is measured
        print(
            f"\nbroker {'killed' if kill else 'stopped gracefully'}, down {down_s:.0f}s; "
            f"back under {LAG_LIMIT_S:.0f}s of lag after the broker served again: "
            + ", ".join(f"{name} {t:.1f}s" for name, t in recovered.items())
        )
        print("readiness seen:", dict(readiness))
        served_at = time.strftime(
            "%H:%M:%S", time.localtime(time.time() - (time.monotonic() - serving))
        )
        assert set(recovered) == {"enrichment", "detection"} and (
            max(recovered.values()) <= RECOVERY_LIMIT_S
        ), f"recovered only {recovered} (broker serving from {served_at}):\n" + _timeline(
            stages, own_broker.broker.home / "broker.log"
        )
        assert [s.proc.pid for s in stages] == pids and all(s.proc.alive() for s in stages)
        # A broker back within seconds may be ridden through without a call failing, so
        # without a stage ever saying it waits (the better outcome); one away for a minute
        # must be said by every stage.
        if down_s:
            for stage in stages:
                said_waiting = f"{stage.name}: not ready: waiting for Kafka"
                assert any(seen.startswith(said_waiting) for seen in readiness), readiness

        total = feeder.stop()
        enrich = stages[0]
        wait_for(
            lambda: (probe.committed(enrich.group, topics.raw) or 0) >= total,
            timeout=90,
            what="enrichment to commit every input",
        )
        enriched = [
            decoded(m, enriched_pb2.EnrichedTelemetry)
            for m in read_events(kafka, topics.enriched, read_committed=True)
        ]
        outputs = Counter((e.telemetry.vehicle_id, e.telemetry.seq) for e in enriched)
        assert set(outputs) == set(feeder.sent), "every input enriched"
        assert max(outputs.values()) == 1, "no input enriched twice"

        # What an uninterrupted in-process run of the same detector says.
        run = Detector(Rules.load(rules)).process([(e, 0) for e in enriched], now_us=0)
        expected = Counter(
            (a.alert_id, a.state) for a in (alert_pb2.Alert.FromString(v) for _, v in run.alerts)
        )

        def alerts() -> tuple[Counter[tuple[str, alert_pb2.AlertState]]] | None:
            got = Counter(
                (a.alert_id, a.state)
                for a in (
                    decoded(m, alert_pb2.Alert)
                    for m in read_all(kafka, topics.alerts, read_committed=True, idle_s=0.5)
                )
            )
            return (got,) if got == expected or max(got.values(), default=1) > 1 else None

        [said] = wait_for(alerts, timeout=90, what="detection's alerts")
        print(f"{len(enriched)} events enriched once each, {sum(said.values())} alerts")
        assert said, "detection alerted"
        assert said == expected and max(said.values()) == 1, (
            "every alert once; differing: "
            + str(
                {
                    k: (said[k], expected[k])
                    for k in said.keys() | expected.keys()
                    if said[k] != expected[k]
                }
            )
            + "\n"
            + _timeline(stages, own_broker.broker.home / "broker.log")
        )
        assert [s.proc.pid for s in stages] == pids, "no process restart"
    finally:
        if not feeder._stop.is_set():
            feeder.stop()
        probe.close()
        for stage in stages:
            stage.proc.stop()
        own_broker.start()
