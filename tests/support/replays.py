"""Telemetry through real enrichment and detection, with the raw topic carrying packs or one
record per event, and the alerts detection committed: what the drills that compare the two
forms share (the simulator's ground truth, the recorded input)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from fleetpipe.core.settings import KafkaSettings, Topics
from fleetpipe.pb.v1 import alert_pb2
from fleetpipe_dev.scenarios import CityFiles
from fleetpipe_dev.testing import ServiceProcess, committed_total, read_all, service_env, wait_for

# What identifies an alert and its episode: the two forms must agree on each of these.
AlertKey = tuple[str, str, str, int, int, int]


class DetectionRun(Protocol):
    """Detection replicas of one consumer group on fresh topics (tests/integration/detection)."""

    topics: Topics
    logs: Path
    produced: int
    processes: list[ServiceProcess]

    def start(self, instance: str, **env: str) -> ServiceProcess: ...

    def wait_processed(self, *, timeout: float = ...) -> None: ...

    def alerts(self) -> list[alert_pb2.Alert]: ...


def records_on(kafka: KafkaSettings, topic: str) -> int:
    """Offsets up to each partition's last record: what a consumer has committed once it has
    read them all (a transaction's marker after the last record is not counted)."""
    last: dict[int, int] = {}
    for m in read_all(kafka, topic, read_committed=True, idle_s=0.5):
        partition, offset = m.partition(), m.offset()
        assert partition is not None and offset is not None
        last[partition] = max(last.get(partition, -1), offset)
    return sum(o + 1 for o in last.values())


def through_enrichment_and_detection(
    kafka: KafkaSettings,
    run: DetectionRun,
    feed: Callable[[str], object],
    *,
    registry: Path,
    city: CityFiles,
    packed: bool,
    name: str,
    timeout: float = 600,
) -> list[alert_pb2.Alert]:
    """Start enrichment and detection on ``run``'s topics, let ``feed`` write the raw topic
    (given its name), wait until both have committed everything; the alerts detection
    committed. ``packed`` says which form the services write on the telemetry topics."""
    topics = run.topics
    mode = "packed" if packed else "per-event"
    # PACK_EVENTS=1 is the one-record-per-event form of the telemetry topics.
    form = {} if packed else {"FLEET_KAFKA__PACK_EVENTS": "1"}
    enrichment = ServiceProcess(
        "fleetpipe.enrichment",
        service_env(
            kafka,
            topics,
            {
                "FLEET_REGISTRY_PATH": str(registry),
                "FLEET_SPEED_LIMITS_PATH": str(city.speed_limits),
                "FLEET_GROUP_ID": f"enrich-{topics.raw}",
                "FLEET_INSTANCE_ID": f"{name}-{mode}",
                **form,
            },
        ),
        run.logs / f"enrichment-{name}-{mode}.log",
    ).start()
    run.processes.append(enrichment)
    run.start(f"{name}-{mode}", FLEET_RULES_PATH=str(city.rules), FLEET_KAFKA__MAX_BATCH="2000")
    feed(topics.raw)
    # Wait for enrichment past the raw topic's last records, then for detection past the
    # enriched topic's: packs make the record counts smaller than the event counts.
    raw = records_on(kafka, topics.raw)
    wait_for(
        lambda: committed_total(kafka, f"enrich-{topics.raw}", topics.raw) >= raw,
        timeout=timeout,
        what=f"enrichment to commit every event ({mode})",
    )
    run.produced = records_on(kafka, topics.enriched)
    run.wait_processed(timeout=timeout)
    return run.alerts()


def packed_and_per_event(
    kafka: KafkaSettings,
    make_run: Callable[[], DetectionRun],
    feed_packed: Callable[[str], object],
    feed_per_event: Callable[[str], object],
    *,
    registry: Path,
    city: CityFiles,
    name: str,
) -> tuple[list[alert_pb2.Alert], list[alert_pb2.Alert]]:
    """The same input through enrichment and detection twice, each on fresh topics: as packs
    (``feed_packed``) and one record per event (``feed_per_event``). The alerts of each."""
    packed, per_event = (
        through_enrichment_and_detection(
            kafka, make_run(), feed, registry=registry, city=city, packed=form, name=name
        )
        for feed, form in ((feed_packed, True), (feed_per_event, False))
    )
    return packed, per_event


def alert_set(alerts: list[alert_pb2.Alert]) -> set[AlertKey]:
    """Each alert by id, vehicle, rule, state and episode start and end."""
    return {
        (a.alert_id, a.vehicle_id, a.rule, a.state, a.episode_start_us, a.episode_end_us)
        for a in alerts
    }
