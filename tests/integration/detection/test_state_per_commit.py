"""Detection writes a vehicle's state once per commit, not once per batch (the loop's
``before_commit``), and a restore reads the last commit's states."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from fleetpipe.core.codecs import RawCodec
from fleetpipe.core.loop import ConsumeProduceLoop, LoopConfig
from fleetpipe.core.metrics import Metrics
from fleetpipe.core.packs import PackCodec
from fleetpipe.core.records import Output, Record
from fleetpipe.core.seal import SEAL_KEY
from fleetpipe.core.settings import DeliveryMode, KafkaSettings, Topics
from fleetpipe.core.stopping import StopFlag
from fleetpipe.detection.changelog import Changelog
from fleetpipe.detection.config import Rules
from fleetpipe.detection.engine import Detector
from fleetpipe.detection.handler import DetectionHandler, DetectionMetrics
from fleetpipe.pb.v1 import enriched_pb2
from fleetpipe_dev.drills import drill_fleet
from fleetpipe_dev.testing import produce_all, read_all, wait_for
from support.loops import running_loop

pytestmark = pytest.mark.integration


class Watched(DetectionHandler):
    """Detection that notes which vehicles each commit window had events of."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.batches = 0
        self.seen = 0
        self.per_batch = 0  # the records one state write per vehicle per batch would make
        self.window: set[str] = set()
        self.windows: list[set[str]] = []

    def handle(self, records: list[Record[bytes]], out: Output) -> None:
        super().handle(records, out)
        self.batches += 1
        self.seen += len(records)
        vehicles = {
            enriched_pb2.EnrichedTelemetry.FromString(r.value).telemetry.vehicle_id for r in records
        }
        self.per_batch += len(vehicles)
        self.window |= vehicles

    def before_commit(self, out: Output) -> None:
        if self.window:
            self.windows.append(self.window)
        self.window = set()
        super().before_commit(out)


def test_a_vehicle_state_is_written_once_per_commit(
    kafka_settings: KafkaSettings, topics: Topics
) -> None:
    events = drill_fleet(40, episodes=3, seed=7)
    produce_all(
        kafka_settings,
        topics.enriched,
        ((e.telemetry.vehicle_id, e.SerializeToString()) for e in events),
    )
    store = Changelog(
        kafka_settings,
        topic=topics.detection_state,
        input_topic=topics.enriched,
        client_id="state-per-commit",
    )
    handler = Watched(
        Detector(Rules()),
        store,
        input_topic=topics.enriched,
        topics=topics,
        metrics=DetectionMetrics(CollectorRegistry()),
        max_batch=100,
    )
    config = LoopConfig(
        service="detection",
        group_id=f"per-commit-{topics.enriched}",
        inputs={topics.enriched: PackCodec(RawCodec(enriched_pb2.EnrichedTelemetry))},
        deadletter_topic=topics.deadletter,
        mode=DeliveryMode.EXACTLY_ONCE,
        instance_id="per-commit",
        max_batch=100,
        seal_topics=(topics.detection_state,),
        commit_interval_s=0.3,
    )
    loop = ConsumeProduceLoop(
        config, kafka_settings, handler, metrics=Metrics("detection"), stop=StopFlag()
    )
    with running_loop(loop):
        wait_for(lambda: handler.seen >= len(events), timeout=120, what="every event")
        wait_for(lambda: not handler.window, timeout=30, what="the last commit")

    written = Counter(
        m.key()
        for m in read_all(kafka_settings, topics.detection_state, read_committed=True)
        if m.key() != SEAL_KEY
    )
    per_window = Counter(vid.encode() for window in handler.windows for vid in window)
    # One record per vehicle per commit that had its events, however many batches did.
    assert written == per_window
    assert handler.batches >= 3 * len(handler.windows), "several batches a commit"
    assert sum(written.values()) < handler.per_batch / 2, "far fewer than a write per batch"

    # A restore reads each vehicle's state as of its last event.
    last_seq: dict[str, int] = {}
    for e in events:
        last_seq[e.telemetry.vehicle_id] = max(
            last_seq.get(e.telemetry.vehicle_id, 0), e.telemetry.seq
        )
    restored = store.load(lambda _vid, _st: True)
    assert {vid: st.last_seq for vid, st in restored.items()} == last_seq
