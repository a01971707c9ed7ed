from __future__ import annotations

import pytest
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from fleetpipe.core.tracing import Span
from fleetpipe.enrichment.handler import _output_headers
from support.builders import output
from support.fakes import RecordingProducer

pytestmark = pytest.mark.unit


def _span(name: str) -> Span:
    """A sampled span of its own per name, so that its headers say which input it came from."""
    context = SpanContext(
        trace_id=1, span_id=ord(name), is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED)
    )
    return Span(NonRecordingSpan(context))


@pytest.mark.parametrize(
    ("traced", "invalid", "expected"),
    [
        pytest.param({2: "c"}, [], {2: "c"}, id="all-valid"),
        pytest.param({0: "a", 2: "c", 3: "d"}, [1], {0: "a", 1: "c", 2: "d"}, id="shift"),
        pytest.param({1: "b", 3: "d"}, [1], {2: "d"}, id="traced-invalid-dropped"),
        pytest.param({4: "e"}, [0, 2], {2: "e"}, id="two-before"),
    ],
)
def test_trace_headers_follow_each_record_to_its_output_position(
    traced: dict[int, str], invalid: list[int], expected: dict[int, str]
) -> None:
    out = output(RecordingProducer())
    out.traced = {i: _span(name) for i, name in traced.items()}
    headers = _output_headers(out, [(i, "bad") for i in invalid])
    assert headers == {i: _span(name).headers for i, name in expected.items()}
