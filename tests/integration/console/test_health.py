"""The console reads the pipeline's health from real services' /metrics: an ingest process and an
enrichment process on Kafka, events sent over gRPC, and a service that does not answer — shown
as down, with no figures, never as an idle service with zero rates.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fleetpipe.core.settings import Topics
from fleetpipe_dev.stack.console import LocalConsole
from fleetpipe_dev.stack.procs import free_port
from fleetpipe_dev.testing import wait_for
from support.console import TOKEN_A, TOKEN_ALL, Console
from support.healthtargets import Services, running_services
from support.hotstore import HotStoreData
from support.servers import BrokerHandle

pytestmark = pytest.mark.integration


@pytest.fixture
def services(kafka: BrokerHandle, topics: Topics, workdir: Path) -> Iterator[Services]:
    with running_services(kafka.settings, topics, workdir) as run:
        yield run


@pytest.fixture
def health_console(
    hot: HotStoreData, services: Services, workdir: Path
) -> Iterator[tuple[Console, str]]:
    # The storage writer's address, with nothing listening there: a service that is down.
    nowhere = f"http://127.0.0.1:{free_port()}"
    targets = {
        "ingest": services.url("ingest"),
        "enrichment": services.url("enrichment"),
        "storage-writer": nowhere,
    }
    local = LocalConsole(
        hot.kafka,
        hot.topics,
        hot.dsn,
        hot.schema,
        workdir / f"console-health-{uuid.uuid4().hex[:6]}.log",
        tokens={TOKEN_A: ["fleet-a"], TOKEN_ALL: ["*"]},
        extra={
            "FLEET_HEALTH__TARGETS": json.dumps(targets),
            "FLEET_HEALTH__INTERVAL_S": "0.5",
            "FLEET_HEALTH__WINDOW_S": "10",
        },
    )
    local.start()
    try:
        yield Console(local), nowhere
    finally:
        assert local.stop() == 0


def _health(console: Console) -> dict[str, dict[str, Any]]:
    with console.client() as client:
        reply = client.get("/api/v1/health")
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["source"] == "metrics endpoints"
    return {s["service"]: s for s in body["services"]}


def test_live_services_show_their_rates_and_lag_and_a_down_one_shows_as_down(
    health_console: tuple[Console, str], services: Services, topics: Topics
) -> None:
    console, nowhere = health_console
    started = time.monotonic()

    def flowing() -> dict[str, dict[str, Any]] | None:
        for p in services.processes.values():
            p.check_alive()
        # Events keep coming while we look, as they would in a running pipeline.
        services.publish(50)
        found = _health(console)
        ingest, enrichment = found["ingest"], found["enrichment"]
        moving = (ingest["in_per_s"] or 0) > 0 and (enrichment["out_per_s"] or 0) > 0
        # A batch's time is counted once it is committed: a moment after its records arrive.
        timed = ingest["processing_ms"] is not None and enrichment["processing_ms"] is not None
        return found if moving and timed else None

    found = wait_for(flowing, timeout=60, interval=0.5, what="rates through ingest and enrichment")
    assert found is not None
    ingest, enrichment, writer = found["ingest"], found["enrichment"], found["storage-writer"]
    assert ingest["up"] and enrichment["up"]
    # Not more than was sent over the time it took: the rate is events per second, not a total.
    elapsed = time.monotonic() - started
    assert 0 < ingest["in_per_s"] <= services.sent / min(elapsed, 10.0) * 1.5 + 50
    assert enrichment["in_per_s"] > 0 and enrichment["processing_ms"] is not None
    assert ingest["processing_ms"] is not None, "ingest's time to acknowledge"
    # Enrichment's lag gauge, per partition of the raw topic (the loop reports it every 5 s).
    lagged = wait_for(
        lambda: _health(console)["enrichment"]["lag"] or None,
        timeout=30,
        interval=0.5,
        what="enrichment's consumer lag",
    )
    assert lagged is not None
    assert {k.rsplit("/", 1)[0] for k in lagged} == {topics.raw}
    assert {k.rsplit("/", 1)[1] for k in lagged} <= {"0", "1", "2"}

    # The one nothing answers for is down, says why, and has no figures — not zeros.
    assert writer["up"] is False
    assert nowhere in writer["error"]
    assert writer["in_per_s"] is None and writer["out_per_s"] is None
    assert writer["total_lag"] is None and writer["lag"] == {}

    # Stop enrichment: it turns down, its figures go, ingest carries on.
    assert services.processes["enrichment"].stop() == 0

    def enrichment_down() -> dict[str, dict[str, Any]] | None:
        services.publish(10)
        now = _health(console)
        return now if now["enrichment"]["up"] is False else None

    now = wait_for(enrichment_down, timeout=30, interval=0.5, what="enrichment shown down")
    assert now is not None
    assert now["enrichment"]["in_per_s"] is None
    assert now["ingest"]["up"] and (now["ingest"]["in_per_s"] or 0) > 0


def test_the_history_feeds_the_charts_and_only_an_all_fleets_token_reads_health(
    health_console: tuple[Console, str], services: Services
) -> None:
    console, _ = health_console
    services.publish(20)

    def charted() -> list[dict[str, Any]] | None:
        with console.client() as client:
            history = client.get("/api/v1/health").json()["history"]
        return history if len(history) >= 3 else None

    history = wait_for(charted, timeout=30, interval=0.3, what="three points of history")
    assert history is not None
    times = [p["at"] for p in history]
    assert times == sorted(times)
    assert set(history[-1]["in_per_s"]) == {"ingest", "enrichment", "storage-writer"}
    assert history[-1]["lag"]["storage-writer"] is None, "down: no lag, not a lag of zero"

    with console.client(TOKEN_A) as client:
        refused = client.get("/api/v1/health")
    assert refused.status_code == 403
    assert "all-fleets token" in refused.json()["detail"]
    with httpx.Client(base_url=console.url, timeout=10) as anonymous:
        assert anonymous.get("/api/v1/health").status_code == 401


def test_an_alerts_trace_without_a_trace_store_says_what_to_configure(
    health_console: tuple[Console, str], hot: HotStoreData
) -> None:
    console, _ = health_console
    ((alert_id,),) = hot.sql("SELECT alert_id FROM alerts ORDER BY alert_id LIMIT 1")
    with console.client() as client:
        reply = client.get(f"/api/v1/alerts/{alert_id}/trace")
        unknown = client.get("/api/v1/alerts/no-such-alert/trace")
    assert reply.status_code == 503
    assert "FLEET_TRACES__QUERY_URL" in reply.json()["detail"]
    assert unknown.status_code == 404
