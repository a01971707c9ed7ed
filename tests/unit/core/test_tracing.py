from __future__ import annotations

import random

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from fleetpipe.core.tracing import (
    DEFAULT_RATIO,
    HeadSampler,
    Tracing,
    config_from_env,
    setup_tracing,
)

pytestmark = pytest.mark.unit

ENDPOINT = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"}


@pytest.mark.parametrize(
    ("env", "enabled", "ratio"),
    [
        pytest.param({}, False, 0.0, id="no-endpoint-is-off"),
        pytest.param(ENDPOINT, True, DEFAULT_RATIO, id="endpoint-only-samples-the-default"),
        pytest.param({**ENDPOINT, "OTEL_SDK_DISABLED": "true"}, False, 0.0, id="sdk-disabled"),
        pytest.param({**ENDPOINT, "OTEL_TRACES_EXPORTER": "none"}, False, 0.0, id="exporter-none"),
        pytest.param(
            {**ENDPOINT, "OTEL_TRACES_SAMPLER": "always_on"}, True, 1.0, id="always-on-is-all"
        ),
        pytest.param(
            {**ENDPOINT, "OTEL_TRACES_SAMPLER": "always_off"}, False, 0.0, id="always-off-is-off"
        ),
        pytest.param(
            {
                **ENDPOINT,
                "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
                "OTEL_TRACES_SAMPLER_ARG": "0.01",
            },
            True,
            0.01,
            id="ratio-from-arg",
        ),
        pytest.param(
            {**ENDPOINT, "OTEL_TRACES_SAMPLER": "traceidratio"}, True, 1.0, id="ratio-default-1"
        ),
        pytest.param(
            {**ENDPOINT, "OTEL_TRACES_SAMPLER_ARG": "0.05"}, True, 0.05, id="arg-alone-is-ratio"
        ),
        pytest.param(
            {**ENDPOINT, "OTEL_TRACES_SAMPLER_ARG": "lots"}, True, DEFAULT_RATIO, id="bad-arg"
        ),
    ],
)
def test_standard_variables_decide_tracing_and_its_ratio(
    env: dict[str, str], enabled: bool, ratio: float
) -> None:
    config = config_from_env("enrichment", env)
    assert (config.enabled, config.ratio) == (enabled, ratio)


def test_service_name_comes_from_otel_service_name_when_set() -> None:
    assert config_from_env("ingest", {"OTEL_SERVICE_NAME": "edge"}).service_name == "edge"
    assert config_from_env("ingest", {}).service_name == "ingest"


def test_without_an_endpoint_setup_gives_a_disabled_tracer() -> None:
    tracing = setup_tracing("ingest", environ={})
    assert not tracing.enabled
    assert tracing.sampler.pick(10_000) == []
    assert tracing.start_root("x") is None


@pytest.mark.parametrize("ratio", [0.001, 0.01, 0.2])
def test_head_sampler_picks_the_ratio_of_events(ratio: float) -> None:
    sampler = HeadSampler(ratio, random.Random(7))
    n = 0
    for _ in range(2000):
        picked = sampler.pick(500)
        assert picked == sorted(set(picked))
        assert all(0 <= i < 500 for i in picked)
        n += len(picked)
    assert n == pytest.approx(ratio * 1_000_000, rel=0.1)


def test_head_sampler_extremes() -> None:
    assert HeadSampler(1.0).pick(5) == [0, 1, 2, 3, 4]
    assert HeadSampler(0.0).pick(1_000_000) == []


def _memory_tracing() -> tuple[Tracing, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return Tracing(provider.get_tracer("test"), ratio=1.0, provider=provider), exporter


def test_headers_carry_a_span_to_its_child() -> None:
    tracing, exporter = _memory_tracing()
    root = tracing.start_root("publish")
    assert root is not None
    names = [k for k, _ in root.headers]
    assert "traceparent" in names
    parent = tracing.sampled_parent([("other", b"x"), *root.headers])
    assert parent is not None
    child = tracing.start_child("process", parent)
    assert child is not None
    child.end()
    root.end()
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert spans["process"].context.trace_id == spans["publish"].context.trace_id
    assert spans["process"].parent is not None
    assert spans["process"].parent.span_id == spans["publish"].context.span_id


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(None, id="no-headers"),
        pytest.param([("fp-reason", b"x")], id="other-headers"),
        pytest.param(
            [("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00")],
            id="not-sampled",
        ),
        pytest.param([("traceparent", b"garbage")], id="malformed"),
    ],
)
def test_records_without_a_sampled_context_get_no_parent(
    headers: list[tuple[str, bytes]] | None,
) -> None:
    assert Tracing.sampled_parent(headers) is None


def test_a_batch_span_links_every_traced_record() -> None:
    tracing, exporter = _memory_tracing()
    records = [tracing.start_root(f"r{i}") for i in range(3)]
    spans = [s for s in records if s is not None]
    with tracing.linked("write", spans):
        pass
    write = next(s for s in exporter.get_finished_spans() if s.name == "write")
    assert {link.context.span_id for link in write.links} == {
        s.otel.get_span_context().span_id for s in spans
    }
