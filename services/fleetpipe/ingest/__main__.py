"""``python -m fleetpipe.ingest`` (``fleetpipe-ingest``), configured by FLEET_* (settings.py)."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time

from pydantic import ValidationError

from fleetpipe.core.errors import ConfigError, KafkaRightMissing, configuration_problem
from fleetpipe.core.health import Health, HealthServer
from fleetpipe.core.kafka import build_admin
from fleetpipe.core.logs import configure_logging
from fleetpipe.core.metrics import Metrics
from fleetpipe.core.preflight import EXIT_KAFKA_REFUSED, check_kafka_rights
from fleetpipe.core.runtime import tune_gc
from fleetpipe.core.tracing import Tracing, setup_tracing
from fleetpipe.ingest.auth import TokenStore
from fleetpipe.ingest.http_api import HttpIngest, build_app
from fleetpipe.ingest.intake import IngestMetrics, Intake
from fleetpipe.ingest.readiness import IntakeReadiness
from fleetpipe.ingest.server import HealthService, IngestServicer, build_server
from fleetpipe.ingest.settings import IngestSettings, IntakeSettings
from fleetpipe.ingest.sink import build_sink
from fleetpipe.ingest.tenancy import Tenancy

log = logging.getLogger("fleetpipe.ingest")

EXIT_CONFIG = 2  # a setting is wrong: restarting will not help


async def refused_by_kafka(settings: IntakeSettings) -> bool:
    """Whether Kafka refuses ingest's principal WRITE on the raw or the dead-letter topic;
    asked before any batch is taken, so nothing is half-written, and said in one line."""
    written = [settings.topics.raw, settings.topics.deadletter]
    try:
        await asyncio.to_thread(check_kafka_rights, settings.kafka, written, timeout_s=10.0)
    except KafkaRightMissing as exc:
        log.critical("%s", exc)
        return True
    return False


async def serve(
    settings: IngestSettings,
    tokens: TokenStore,
    tracing: Tracing | None = None,
    *,
    tenancy: Tenancy | None = None,
) -> int:
    """Run until SIGTERM/SIGINT (exit 0) or a fatal producer error (exit 1); exit 3 at once
    when Kafka refuses the principal WRITE on a topic ingest produces to."""
    obs = settings.observability
    metrics = Metrics("ingest")
    health = Health(liveness_timeout_s=obs.liveness_timeout_s)
    http = HealthServer(health, metrics, host=obs.http_host, port=obs.http_port)
    http.start()
    log.info("health and metrics on %s:%d", obs.http_host, http.port)
    if await refused_by_kafka(settings):
        http.stop()
        return EXIT_KAFKA_REFUSED
    sink = build_sink(settings, client_id=f"ingest-{settings.instance_id}")
    sink.start()
    intake = Intake(settings, sink, IngestMetrics(metrics), tracing=tracing, tenancy=tenancy)
    servicer = IngestServicer(settings, intake, tokens)
    health_service = HealthService()
    server, port = build_server(settings, servicer, health_service)
    await server.start()
    readiness = IntakeReadiness(build_admin(settings.kafka, timeout_s=10.0), settings.topics, sink)

    said: list[str | None] = ["not checked yet"]

    async def check_topics() -> None:
        problem = await readiness.check()
        if problem != said[0]:
            said[0] = problem
            intake.unavailable = problem
            health.set_ready(problem is None, problem or "")
            await health_service.set(problem is None)

    http_ingest = None
    if settings.http.port is not None:
        http_ingest = HttpIngest(settings.http, build_app(settings.http, intake, tokens))
        http_port = await http_ingest.start()
        log.info(
            "HTTP ingest on %s:%d (POST /v1/fleets/{fleet}/telemetry)",
            settings.http.host,
            http_port,
        )
    await check_topics()
    log.info(
        "gRPC listening on %s:%d (tls %s, %d tokens for %d fleets), producing to %s",
        settings.grpc_host,
        port,
        "on" if settings.tls.enabled else "off",
        len(tokens),
        len(tokens.fleets()),
        settings.topics.raw,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    async def heartbeat() -> None:
        every = settings.topic_check_interval_s
        next_topic_check = time.monotonic() + every
        while True:
            health.beat()
            tokens.maybe_reload()
            if time.monotonic() >= next_topic_check:
                await check_topics()
                next_topic_check = time.monotonic() + every
            await asyncio.sleep(1.0)

    beat = asyncio.create_task(heartbeat())
    stopped, fatal = asyncio.create_task(stop.wait()), asyncio.create_task(sink.fatal.wait())
    await asyncio.wait({stopped, fatal}, return_when=asyncio.FIRST_COMPLETED)
    log.info("stopping: draining calls for up to %gs", settings.grace_s)
    health.set_ready(False, "shutting down")
    await health_service.set(False)
    if http_ingest is not None:
        await http_ingest.stop()
    await server.stop(settings.grace_s)
    for task in (beat, stopped, fatal):
        task.cancel()
    await sink.finish(30.0)
    http.stop()
    return 1 if sink.fatal_error else 0


def main() -> None:
    try:
        settings = IngestSettings()
        tokens = TokenStore(settings.auth)
        tenancy = Tenancy.from_file(
            settings.registry_path,
            unknown=settings.unknown_vehicles,
            check_interval_s=settings.registry_check_interval_s,
        )
    except (ValidationError, ConfigError) as exc:
        # One line for the person reading the pod's log, not a traceback; no setting's value
        # is quoted, as it may be a secret.
        print(f"fleetpipe-ingest: bad configuration: {configuration_problem(exc)}", file=sys.stderr)
        sys.exit(EXIT_CONFIG)
    obs = settings.observability
    configure_logging(service="ingest", level=obs.log_level, fmt=obs.log_format)
    tracing = setup_tracing("ingest", instance_id=settings.instance_id)
    # Settings, tokens and the registry live as long as ingest does (core.runtime).
    tune_gc(settings.runtime)
    try:
        code = asyncio.run(serve(settings, tokens, tracing, tenancy=tenancy))
    finally:
        tracing.shutdown()
    sys.exit(code)


if __name__ == "__main__":
    main()
