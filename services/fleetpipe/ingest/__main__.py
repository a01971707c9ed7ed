"""``python -m fleetpipe.ingest`` (``fleetpipe-ingest``), configured by FLEET_* (settings.py)."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from fleetpipe.core.health import Health, HealthServer
from fleetpipe.core.kafka import build_producer
from fleetpipe.core.logs import configure_logging
from fleetpipe.core.metrics import Metrics
from fleetpipe.core.tracing import Tracing, setup_tracing
from fleetpipe.ingest.auth import TokenStore
from fleetpipe.ingest.server import HealthService, IngestMetrics, IngestServicer, build_server
from fleetpipe.ingest.settings import IngestSettings
from fleetpipe.ingest.sink import KafkaSink

log = logging.getLogger("fleetpipe.ingest")


async def serve(settings: IngestSettings, tracing: Tracing | None = None) -> int:
    """Run until SIGTERM/SIGINT (exit 0) or a fatal producer error (exit 1)."""
    obs = settings.observability
    metrics = Metrics("ingest")
    health = Health(liveness_timeout_s=obs.liveness_timeout_s)
    http = HealthServer(health, metrics, host=obs.http_host, port=obs.http_port)
    http.start()
    log.info("health and metrics on %s:%d", obs.http_host, http.port)
    tokens = TokenStore(settings.auth)
    producer = build_producer(
        settings.kafka,
        client_id=f"ingest-{settings.instance_id}",
        overrides={"delivery.timeout.ms": settings.delivery_timeout_ms},
        report_every_delivery=True,
    )
    sink = KafkaSink(
        producer,
        raw_topic=settings.topics.raw,
        deadletter_topic=settings.topics.deadletter,
        max_inflight_events=settings.max_inflight_events,
    )
    sink.start()
    servicer = IngestServicer(settings, sink, tokens, IngestMetrics(metrics), tracing=tracing)
    health_service = HealthService()
    server, port = build_server(settings, servicer, health_service)
    await server.start()
    await health_service.set(True)
    health.set_ready(True)
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
        while True:
            health.beat()
            tokens.maybe_reload()
            await asyncio.sleep(1.0)

    beat = asyncio.create_task(heartbeat())
    stopped, fatal = asyncio.create_task(stop.wait()), asyncio.create_task(sink.fatal.wait())
    await asyncio.wait({stopped, fatal}, return_when=asyncio.FIRST_COMPLETED)
    log.info("stopping: draining calls for up to %gs", settings.grace_s)
    health.set_ready(False, "shutting down")
    await health_service.set(False)
    await server.stop(settings.grace_s)
    for task in (beat, stopped, fatal):
        task.cancel()
    left = await asyncio.to_thread(sink.close, 30.0)
    if left:
        log.error("%d records were still undelivered at shutdown", left)
    http.stop()
    return 1 if sink.fatal_error else 0


def main() -> None:
    settings = IngestSettings()
    obs = settings.observability
    configure_logging(service="ingest", level=obs.log_level, fmt=obs.log_format)
    tracing = setup_tracing("ingest", instance_id=settings.instance_id)
    try:
        code = asyncio.run(serve(settings, tracing))
    finally:
        tracing.shutdown()
    sys.exit(code)


if __name__ == "__main__":
    main()
