"""``python -m fleetpipe.ingest.mqtt`` (``fleetpipe-mqtt-bridge``), configured by FLEET_*
(``FLEET_MQTT__*`` for the broker, the rest as ingest's; see settings.py)."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time

from pydantic import ValidationError

from fleetpipe.core.errors import ConfigError, configuration_problem
from fleetpipe.core.health import Health, HealthServer
from fleetpipe.core.kafka import build_admin
from fleetpipe.core.logs import configure_logging
from fleetpipe.core.metrics import Metrics
from fleetpipe.core.preflight import EXIT_KAFKA_REFUSED
from fleetpipe.core.runtime import tune_gc
from fleetpipe.core.tracing import Tracing, setup_tracing
from fleetpipe.ingest.__main__ import EXIT_CONFIG, refused_by_kafka
from fleetpipe.ingest.intake import IngestMetrics, Intake
from fleetpipe.ingest.mqtt.bridge import Bridge, BridgeMetrics
from fleetpipe.ingest.mqtt.edge import MqttEdge
from fleetpipe.ingest.mqtt.settings import BridgeSettings
from fleetpipe.ingest.readiness import IntakeReadiness
from fleetpipe.ingest.sink import build_sink
from fleetpipe.ingest.tenancy import Tenancy

log = logging.getLogger("fleetpipe.ingest.mqtt")
SERVICE = "mqtt-bridge"


async def serve(
    settings: BridgeSettings, tracing: Tracing | None = None, *, tenancy: Tenancy | None = None
) -> int:
    """Run until SIGTERM/SIGINT (exit 0) or a fatal producer error (exit 1)."""
    obs = settings.observability
    metrics = Metrics(SERVICE)
    health = Health(liveness_timeout_s=obs.liveness_timeout_s)
    http = HealthServer(health, metrics, host=obs.http_host, port=obs.http_port)
    http.start()
    log.info("health and metrics on %s:%d", obs.http_host, http.port)
    if await refused_by_kafka(settings):
        http.stop()
        return EXIT_KAFKA_REFUSED
    sink = build_sink(settings, client_id=f"{SERVICE}-{settings.instance_id}")
    sink.start()
    intake = Intake(
        settings,
        sink,
        IngestMetrics(metrics),
        service=SERVICE,
        tracing=tracing,
        tenancy=tenancy,
    )
    loop = asyncio.get_running_loop()
    edge: MqttEdge | None = None

    def ack(mid: int, qos: int) -> None:
        assert edge is not None
        edge.ack(mid, qos)

    def publish(topic: str, payload: bytes, content_type: str) -> None:
        assert edge is not None
        edge.publish(topic, payload, content_type)

    bridge = Bridge(settings, intake, BridgeMetrics(metrics), ack=ack, publish=publish)
    readiness = IntakeReadiness(build_admin(settings.kafka, timeout_s=10.0), settings.topics, sink)
    intake.unavailable = await readiness.check()
    client_id = settings.mqtt.client_id or f"fleetpipe-bridge-{settings.instance_id}"
    edge = MqttEdge(settings.mqtt, client_id=client_id, loop=loop, deliver=bridge.received)
    edge.start()
    log.info(
        "bridging MQTT %s:%d (group %s, client %s) to %s",
        settings.mqtt.host,
        settings.mqtt.port,
        settings.mqtt.share_group,
        client_id,
        settings.topics.raw,
    )
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    async def heartbeat() -> None:
        every = settings.topic_check_interval_s
        next_topic_check = time.monotonic() + every
        while True:
            health.beat()
            if time.monotonic() >= next_topic_check:
                intake.unavailable = await readiness.check()
                next_topic_check = time.monotonic() + every
            problem = intake.unavailable or edge.problem
            health.set_ready(problem is None, problem or "")
            await asyncio.sleep(0.5)

    beat = asyncio.create_task(heartbeat())
    stopped, fatal = asyncio.create_task(stop.wait()), asyncio.create_task(sink.fatal.wait())
    await asyncio.wait({stopped, fatal}, return_when=asyncio.FIRST_COMPLETED)
    log.info("stopping: finishing messages in hand for up to %gs", settings.grace_s)
    health.set_ready(False, "shutting down")
    left = await bridge.drain(settings.grace_s)
    if left:
        log.warning("%d messages left unacknowledged: the broker sends them again", left)
    edge.stop()
    for task in (beat, stopped, fatal):
        task.cancel()
    await sink.finish(30.0)
    http.stop()
    return 1 if sink.fatal_error else 0


def main() -> None:
    try:
        settings = BridgeSettings()
        # A gateway account may name any vehicle under its fleet's topics: the registry says
        # whose each vehicle is, as it does for ingest.
        tenancy = Tenancy.from_file(
            settings.registry_path,
            unknown=settings.unknown_vehicles,
            check_interval_s=settings.registry_check_interval_s,
        )
    except (ValidationError, ConfigError) as exc:
        print(
            f"fleetpipe-mqtt-bridge: bad configuration: {configuration_problem(exc)}",
            file=sys.stderr,
        )
        sys.exit(EXIT_CONFIG)
    obs = settings.observability
    configure_logging(service=SERVICE, level=obs.log_level, fmt=obs.log_format)
    tracing = setup_tracing(SERVICE, instance_id=settings.instance_id)
    # Settings and the registry live as long as the bridge does (core.runtime).
    tune_gc(settings.runtime)
    try:
        code = asyncio.run(serve(settings, tracing, tenancy=tenancy))
    finally:
        tracing.shutdown()
    sys.exit(code)


if __name__ == "__main__":
    main()
