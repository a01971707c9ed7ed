"""Real services whose /metrics the console's health page reads: an ingest process and an
enrichment process on a test's topics, and a way to send them events over gRPC."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc

from fleetpipe.core.settings import KafkaSettings, Topics
from fleetpipe.pb.v1 import ingest_pb2, ingest_pb2_grpc
from fleetpipe_dev.stack.procs import free_port
from fleetpipe_dev.testing import ServiceProcess, service_env, wait_for
from fleetpipe_loadtest import synthetic

INGEST_TOKEN = "token-of-the-health-fleet-0123456789"
FLEET = "fleet-health"


class Services:
    def __init__(self) -> None:
        self.processes: dict[str, ServiceProcess] = {}
        self.grpc_port = free_port()
        self.sent = 0

    def url(self, name: str) -> str:
        port = self.processes[name].http_port()
        assert port is not None, f"{name} logged no health port"
        return f"http://127.0.0.1:{port}"

    def publish(self, n: int) -> None:
        """``n`` more events of five vehicles, one Publish call, all accepted."""
        seq_from = self.sent + 1
        events = [synthetic.telemetry(i % 5, seq_from + i, fleet=FLEET) for i in range(n)]
        with grpc.insecure_channel(f"127.0.0.1:{self.grpc_port}") as channel:
            ack = ingest_pb2_grpc.TelemetryIngestStub(channel).Publish(
                ingest_pb2.TelemetryBatch(batch_id=seq_from, events=events),
                metadata=(("authorization", f"Bearer {INGEST_TOKEN}"),),
                timeout=30,
            )
        assert ack.accepted == n, ack
        self.sent += n


@contextmanager
def running_services(kafka: KafkaSettings, topics: Topics, workdir: Path) -> Iterator[Services]:
    """Ingest and enrichment on ``topics``, ready, for the block; stopped afterwards."""
    run = Services()
    suffix = uuid.uuid4().hex[:8]
    for name, module, extra in (
        (
            "ingest",
            "fleetpipe.ingest",
            {
                "FLEET_GRPC_HOST": "127.0.0.1",
                "FLEET_GRPC_PORT": str(run.grpc_port),
                "FLEET_AUTH__TOKENS": json.dumps({INGEST_TOKEN: FLEET}),
            },
        ),
        ("enrichment", "fleetpipe.enrichment", {"FLEET_GROUP_ID": f"enrichment-{suffix}"}),
    ):
        env = service_env(kafka, topics, {"FLEET_INSTANCE_ID": name, **extra})
        log = workdir / f"health-{name}-{suffix}.log"
        run.processes[name] = ServiceProcess(module, env, log).start()

    def ready() -> bool:
        for p in run.processes.values():
            p.check_alive()
        return all(p.ready() for p in run.processes.values())

    try:
        wait_for(ready, timeout=90, interval=0.3, what="ingest and enrichment to be ready")
        yield run
    finally:
        for p in run.processes.values():
            if p.alive():
                p.stop()
