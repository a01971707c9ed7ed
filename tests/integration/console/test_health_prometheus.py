"""The console reads the pipeline's health from a real Prometheus's HTTP API (Debian's server)
scraping real services: rates through ingest and enrichment, series of a service summed by job,
and a job whose target is down shown as down, with no figures."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fleetpipe.core.settings import Topics
from fleetpipe_dev.stack.console import LocalConsole
from fleetpipe_dev.stack.procs import free_port
from fleetpipe_dev.testing import wait_for
from support.console import TOKEN_ALL, Console
from support.healthtargets import Services, running_services
from support.hotstore import HotStoreData
from support.prometheus import running_prometheus
from support.servers import BrokerHandle

pytestmark = pytest.mark.integration

JOBS = ("ingest", "enrichment", "storage-writer")


@pytest.fixture
def prometheus_console(
    kafka: BrokerHandle, topics: Topics, hot: HotStoreData, workdir: Path
) -> Iterator[tuple[Console, Services]]:
    run = uuid.uuid4().hex[:6]
    with running_services(kafka.settings, topics, workdir) as services:
        jobs = {
            "ingest": services.url("ingest").removeprefix("http://"),
            "enrichment": services.url("enrichment").removeprefix("http://"),
            "storage-writer": f"127.0.0.1:{free_port()}",  # nothing listens: down
        }
        with running_prometheus(jobs, workdir / f"prometheus-{run}") as prometheus:
            local = LocalConsole(
                hot.kafka,
                hot.topics,
                hot.dsn,
                hot.schema,
                workdir / f"console-prometheus-{run}.log",
                tokens={TOKEN_ALL: ["*"]},
                extra={
                    "FLEET_HEALTH__PROMETHEUS_URL": prometheus.url,
                    "FLEET_HEALTH__SERVICES": json.dumps(list(JOBS)),
                    "FLEET_HEALTH__INTERVAL_S": "1",
                    "FLEET_HEALTH__WINDOW_S": "10",
                },
            )
            local.start()
            try:
                yield Console(local), services
            finally:
                assert local.stop() == 0


def test_health_from_prometheus_shows_rates_and_a_down_job(
    prometheus_console: tuple[Console, Services],
) -> None:
    console, services = prometheus_console

    def flowing() -> dict[str, dict[str, Any]] | None:
        services.publish(50)
        with console.client() as client:
            body = client.get("/api/v1/health").json()
        assert body["source"] == "prometheus"
        found = {s["service"]: s for s in body["services"]}
        ingest, enrichment = found["ingest"], found["enrichment"]
        moving = (ingest["in_per_s"] or 0) > 0 and (enrichment["out_per_s"] or 0) > 0
        return found if moving and enrichment["lag"] else None

    found = wait_for(flowing, timeout=90, interval=1.0, what="rates read from Prometheus")
    assert found is not None
    assert set(found) == set(JOBS), "only the services named, not Prometheus' other jobs"
    enrichment = found["enrichment"]
    assert enrichment["up"] and enrichment["in_per_s"] > 0
    # Prometheus' own target labels (instance, job) are summed away; the metric's stay.
    assert all("/" in key and "instance" not in key for key in enrichment["lag"])
    writer = found["storage-writer"]
    assert writer["up"] is False and "no target of it that is up" in writer["error"]
    assert writer["in_per_s"] is None and writer["total_lag"] is None
