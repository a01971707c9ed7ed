"""An alert's trace as a waterfall: Jaeger's JSON to rows in causal order, Kafka hops named."""

from __future__ import annotations

from typing import Any

import pytest

from fleetpipe.console.waterfall import MalformedTrace, waterfall

pytestmark = pytest.mark.unit


def _span(
    sid: str,
    name: str,
    process: str,
    start: int,
    duration: int,
    *,
    parent: str | None = None,
    tags: dict[str, Any] | None = None,
) -> dict[str, Any]:
    refs = [{"refType": "CHILD_OF", "traceID": "t1", "spanID": parent}] if parent else []
    return {
        "traceID": "t1",
        "spanID": sid,
        "operationName": name,
        "processID": process,
        "startTime": start,
        "duration": duration,
        "references": refs,
        "tags": [{"key": k, "type": "string", "value": v} for k, v in (tags or {}).items()],
    }


def _kafka(topic: str, partition: str, offset: int, operation: str) -> dict[str, Any]:
    return {
        "messaging.system": "kafka",
        "messaging.destination.name": topic,
        "messaging.destination.partition.id": partition,
        "messaging.kafka.offset": offset,
        "messaging.operation": operation,
    }


PROCESSES = {
    "p1": {"serviceName": "ingest"},
    "p2": {"serviceName": "enrichment"},
    "p3": {"serviceName": "detection"},
    "p4": {"serviceName": "notification"},
}


def test_spans_come_parent_first_siblings_by_start_with_their_kafka_hops() -> None:
    # Listed out of order, as the query API may list them.
    trace = {
        "traceID": "t1",
        "processes": PROCESSES,
        "spans": [
            _span("d", "alert crash", "p3", 1_000_400, 5, parent="c",
                  tags={"fleetpipe.alert.id": "v1:crash:1", "fleetpipe.alert.state": "open"}),
            _span("e", "fleet.alerts.v1 process", "p4", 1_000_900, 300, parent="d",
                  tags=_kafka("fleet.alerts.v1", "2", 17, "process")),
            _span("b", "fleet.telemetry.raw.v1 process", "p2", 1_000_100, 50, parent="a",
                  tags=_kafka("fleet.telemetry.raw.v1", "2", 41, "process")),
            _span("a", "fleet.telemetry.raw.v1 publish", "p1", 1_000_000, 20,
                  tags=_kafka("fleet.telemetry.raw.v1", "2", 41, "publish")),
            _span("c", "fleet.telemetry.enriched.v1 process", "p3", 1_000_300, 200, parent="b"),
            _span("f", "twilio sms", "p4", 1_000_950, 100, parent="e",
                  tags={"error": True}),
        ],
    }  # fmt: skip
    drawn = waterfall(trace)
    assert [s.span_id for s in drawn.spans] == ["a", "b", "c", "d", "e", "f"]
    assert [s.depth for s in drawn.spans] == [0, 1, 2, 3, 4, 5]
    assert drawn.services == ("ingest", "enrichment", "detection", "notification")
    assert drawn.start_us == 1_000_000 and drawn.duration_us == 1_200  # e ends last
    first, enrich = drawn.spans[0], drawn.spans[1]
    assert first.kafka is not None and first.kafka.operation == "publish"
    assert enrich.kafka is not None
    assert (enrich.kafka.topic, enrich.kafka.partition, enrich.kafka.offset) == (
        "fleet.telemetry.raw.v1",
        2,
        41,
    )
    assert enrich.offset_us == 100 and enrich.duration_us == 50
    alert = drawn.spans[3]
    assert alert.tags == {"fleetpipe.alert.id": "v1:crash:1", "fleetpipe.alert.state": "open"}
    assert drawn.spans[5].error and not drawn.spans[4].error


def test_a_span_whose_parent_is_missing_starts_a_branch_of_its_own() -> None:
    trace = {
        "traceID": "t1",
        "processes": PROCESSES,
        "spans": [
            _span("x", "late child", "p2", 50, 10, parent="gone"),
            _span("r", "root", "p1", 0, 100),
            _span("r2", "second child", "p1", 30, 5, parent="r"),
            _span("r1", "first child", "p1", 10, 5, parent="r"),
        ],
    }
    drawn = waterfall(trace)
    assert [(s.span_id, s.depth) for s in drawn.spans] == [
        ("r", 0),
        ("r1", 1),
        ("r2", 1),
        ("x", 0),
    ]
    assert drawn.spans[3].parent_id is None


@pytest.mark.parametrize(
    "trace",
    [
        pytest.param({}, id="empty"),
        pytest.param({"traceID": "t", "spans": [], "processes": {}}, id="no-spans"),
        pytest.param({"traceID": "t", "spans": [{"spanID": "a"}], "processes": {}}, id="no-time"),
    ],
)
def test_what_is_not_a_trace_is_refused_clearly(trace: dict[str, Any]) -> None:
    with pytest.raises(MalformedTrace):
        waterfall(trace)
