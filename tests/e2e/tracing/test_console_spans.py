"""The console traces like every service: a span per request, exported to Jaeger over OTLP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fleetpipe_dev.stack.console import LocalConsole
from fleetpipe_dev.stack.jaeger import JaegerServer
from fleetpipe_dev.testing import wait_for
from support.hotstore import HotStoreData, fill
from support.servers import BrokerHandle, PostgresHandle

pytestmark = pytest.mark.e2e

TOKEN = "token-of-operations"


@pytest.fixture
def hot(kafka: BrokerHandle, postgres: PostgresHandle, workdir: Path) -> Iterator[HotStoreData]:
    yield from fill(kafka.settings, postgres.dsn, workdir)


def test_each_request_is_a_span_in_jaeger(
    hot: HotStoreData, jaeger: JaegerServer, workdir: Path
) -> None:
    service = f"fleetpipe-console-{hot.schema}"
    console = LocalConsole(
        hot.kafka,
        hot.topics,
        hot.dsn,
        hot.schema,
        workdir / f"console-traced-{hot.schema}.log",
        tokens={TOKEN: ["*"]},
        extra={"OTEL_EXPORTER_OTLP_ENDPOINT": jaeger.otlp_endpoint, "OTEL_SERVICE_NAME": service},
    ).start()
    try:
        answer = httpx.get(
            f"{console.url}/api/v1/alerts",
            params={"open": "true"},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=10,
        )
        assert answer.status_code == 200

        def exported() -> list[Any] | None:
            traces = jaeger.traces(service)
            spans = [
                s for t in traces for s in t["spans"] if s["operationName"] == "GET /api/v1/alerts"
            ]
            return spans or None

        spans = wait_for(exported, timeout=30, interval=0.5, what="the request's span in Jaeger")
    finally:
        assert console.stop() == 0
    tags = {t["key"]: t["value"] for t in spans[0]["tags"]}
    assert tags["http.route"] == "/api/v1/alerts"
    assert tags["http.response.status_code"] == 200
