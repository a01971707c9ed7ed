"""The consume loop in-process: built over the raw topic's telemetry, run on a thread, stopped
(drained) on the way out."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from fleetpipe.core.codecs import ProtoCodec
from fleetpipe.core.loop import ConsumeProduceLoop, Handler, LoopConfig
from fleetpipe.core.metrics import Metrics
from fleetpipe.core.settings import DeliveryMode, KafkaSettings, Topics
from fleetpipe.core.stopping import StopFlag
from fleetpipe.pb.v1 import telemetry_pb2


def telemetry_loop(
    kafka: KafkaSettings,
    topics: Topics,
    handler: Handler,
    *,
    group: str,
    instance: str,
    mode: DeliveryMode,
    max_batch: int,
    commit_interval_s: float = LoopConfig.commit_interval_s,
) -> ConsumeProduceLoop:
    """A loop of service "test" feeding ``handler`` the raw topic's telemetry in consumer group
    ``group``, dead letters to the topics' dead-letter topic; a batch given up is retried after
    0.1 to 0.5 s, so that a test's retries take moments."""
    config = LoopConfig(
        service="test",
        group_id=group,
        inputs={topics.raw: ProtoCodec(telemetry_pb2.Telemetry)},
        deadletter_topic=topics.deadletter,
        mode=mode,
        instance_id=instance,
        max_batch=max_batch,
        retry_backoff_s=(0.1, 0.5),
        commit_interval_s=commit_interval_s,
    )
    return ConsumeProduceLoop(config, kafka, handler, metrics=Metrics("test"), stop=StopFlag())


@contextmanager
def running_loop(loop: ConsumeProduceLoop) -> Iterator[ConsumeProduceLoop]:
    thread = threading.Thread(target=loop.run, daemon=True)
    thread.start()
    try:
        yield loop
    finally:
        loop.stop.set()
        thread.join(60)
        assert not thread.is_alive(), "the loop must drain and stop"
