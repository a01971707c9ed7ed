"""Wiring shared by every Kafka-facing service's ``main()``: logs, metrics, health, signals,
tracing."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from fleetpipe.core.codecs import ProtoCodec
from fleetpipe.core.errors import KafkaRightMissing
from fleetpipe.core.health import Health, HealthServer
from fleetpipe.core.logs import configure_logging
from fleetpipe.core.loop import ConsumeProduceLoop, Handler, LoopConfig
from fleetpipe.core.metrics import Metrics
from fleetpipe.core.preflight import EXIT_KAFKA_REFUSED, check_kafka_rights, topics_written_by
from fleetpipe.core.runtime import tune_gc
from fleetpipe.core.settings import DeliveryMode, ServiceSettings
from fleetpipe.core.stopping import StopFlag
from fleetpipe.core.tracing import setup_tracing

log = logging.getLogger(__name__)


def loop_config(
    service: str,
    settings: ServiceSettings,
    *,
    group_id: str,
    inputs: Mapping[str, ProtoCodec[Any]],
    mode: DeliveryMode,
    max_batch: int | None = None,
    poll_timeout_s: float | None = None,
    seal_topics: tuple[str, ...] = (),
    assign_bound_s: float = 0.0,
) -> LoopConfig:
    """The loop of ``service`` as the settings every service shares configure it.

    The dead-letter topic, the instance, the commit interval and Kafka's poll timeout come from
    ``settings``; the batch is Kafka's ``max_batch`` and the poll timeout Kafka's
    ``poll_timeout_s`` unless the service sets its own.
    """
    return LoopConfig(
        service=service,
        group_id=group_id,
        inputs=inputs,
        deadletter_topic=settings.topics.deadletter,
        mode=mode,
        instance_id=settings.instance_id,
        max_batch=settings.kafka.max_batch if max_batch is None else max_batch,
        poll_timeout_s=settings.kafka.poll_timeout_s if poll_timeout_s is None else poll_timeout_s,
        seal_topics=seal_topics,
        commit_interval_s=settings.kafka.commit_interval_ms / 1000,
        assign_bound_s=assign_bound_s,
    )


def run_loop_service(
    service: str,
    settings: ServiceSettings,
    build: Callable[[Metrics], tuple[LoopConfig, Handler]],
) -> None:
    """Run ``service`` until SIGTERM: the loop, its health endpoint, metrics and tracing."""
    obs = settings.observability
    configure_logging(service=service, level=obs.log_level, fmt=obs.log_format)
    tracing = setup_tracing(service, instance_id=settings.instance_id)
    metrics = Metrics(service)
    health = Health(liveness_timeout_s=obs.liveness_timeout_s)
    server = HealthServer(health, metrics, host=obs.http_host, port=obs.http_port)
    server.start()
    log.info("health and metrics on %s:%d", obs.http_host, server.port)
    stop = StopFlag()
    stop.install_signal_handlers()
    try:
        check_kafka_rights(
            settings.kafka,
            topics_written_by(service, settings.topics),
            timeout_s=settings.kafka.call_timeout_ms / 1000,
        )
        config, handler = build(metrics)
        loop = ConsumeProduceLoop(
            config,
            settings.kafka,
            handler,
            metrics=metrics,
            health=health,
            stop=stop,
            tracing=tracing,
        )
        # Last before the loop: what the service built to run lives as long as it does.
        tune_gc(settings.runtime)
        loop.run()
    except KafkaRightMissing as exc:
        # One line a person can act on, then out: nothing changes until an ACL does.
        log.critical("%s", exc)
        raise SystemExit(EXIT_KAFKA_REFUSED) from None
    finally:
        tracing.shutdown()
        server.stop()
