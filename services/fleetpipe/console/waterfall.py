"""An alert's trace as a waterfall: Jaeger's JSON in, rows a page can draw out. No I/O.

Jaeger's query API (``/api/traces/{id}``) answers a trace as spans with their process (the
service), parent references, start times and durations in microseconds, and tags. The rows come
in causal order — each span after its parent, siblings by start time — with their depth, their
offset from the trace's start and, for a Kafka hop, its topic, partition and offset.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# The tags a person reading a trace wants beside a span's name.
SHOWN_TAGS = (
    "fleetpipe.vehicle_id",
    "fleetpipe.seq",
    "fleetpipe.alert.id",
    "fleetpipe.alert.rule",
    "fleetpipe.alert.state",
    "fleetpipe.delivery.status",
    "fleetpipe.delivery.attempts",
    "db.system",
    "db.operation.batch.size",
    "http.route",
)


class MalformedTrace(ValueError):
    """The query API answered something that is not a trace."""


@dataclass(frozen=True, slots=True)
class KafkaHop:
    topic: str
    operation: str
    partition: int | None
    offset: int | None


@dataclass(frozen=True, slots=True)
class SpanRow:
    span_id: str
    parent_id: str | None
    service: str
    name: str
    depth: int
    offset_us: int  # from the trace's first span
    duration_us: int
    error: bool
    kafka: KafkaHop | None = None
    tags: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Waterfall:
    trace_id: str
    start_us: int  # epoch microseconds of the first span
    duration_us: int
    services: tuple[str, ...]  # in the order they first appear
    spans: tuple[SpanRow, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "trace_id": self.trace_id,
            "start_us": self.start_us,
            "duration_us": self.duration_us,
            "services": list(self.services),
            "spans": [
                {
                    "span_id": s.span_id,
                    "parent_id": s.parent_id,
                    "service": s.service,
                    "name": s.name,
                    "depth": s.depth,
                    "offset_us": s.offset_us,
                    "duration_us": s.duration_us,
                    "error": s.error,
                    "kafka": None
                    if s.kafka is None
                    else {
                        "topic": s.kafka.topic,
                        "operation": s.kafka.operation,
                        "partition": s.kafka.partition,
                        "offset": s.kafka.offset,
                    },
                    "tags": dict(s.tags),
                }
                for s in self.spans
            ],
        }


def _tags(span: Mapping[str, Any]) -> dict[str, Any]:
    return {str(t["key"]): t.get("value") for t in span.get("tags") or [] if "key" in t}


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _kafka(tags: Mapping[str, Any]) -> KafkaHop | None:
    if tags.get("messaging.system") != "kafka":
        return None
    return KafkaHop(
        topic=str(tags.get("messaging.destination.name", "")),
        operation=str(tags.get("messaging.operation", "")),
        partition=_int(tags.get("messaging.destination.partition.id")),
        offset=_int(tags.get("messaging.kafka.offset")),
    )


def _parent(span: Mapping[str, Any], known: Mapping[str, Any]) -> str | None:
    for ref in span.get("references") or []:
        if ref.get("refType") == "CHILD_OF" and ref.get("spanID") in known:
            return str(ref["spanID"])
    return None


def waterfall(trace: Mapping[str, Any]) -> Waterfall:
    """The rows of one trace of the query API's ``data`` list, in causal order."""
    try:
        trace_id = str(trace["traceID"])
        raw_spans = list(trace["spans"])
        processes = {pid: str(p["serviceName"]) for pid, p in trace["processes"].items()}
        spans = {str(s["spanID"]): s for s in raw_spans}
        starts = {sid: int(s["startTime"]) for sid, s in spans.items()}
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise MalformedTrace(f"not a trace of Jaeger's query API: {exc!r}") from exc
    if not spans:
        raise MalformedTrace(f"trace {trace_id} has no spans")
    parents = {sid: _parent(s, spans) for sid, s in spans.items()}
    children: dict[str | None, list[str]] = defaultdict(list)
    for sid, parent in parents.items():
        children[parent].append(sid)
    for kids in children.values():
        kids.sort(key=lambda sid: (starts[sid], sid))
    first = min(starts.values())
    rows: list[SpanRow] = []
    # Depth first from the roots (a span whose parent is missing is a root too): a parent
    # always comes before its children, so the rows read in causal order.
    stack = [(sid, 0) for sid in reversed(children[None])]
    while stack:
        sid, depth = stack.pop()
        span = spans[sid]
        tags = _tags(span)
        rows.append(
            SpanRow(
                span_id=sid,
                parent_id=parents[sid],
                service=processes.get(str(span.get("processID")), "?"),
                name=str(span.get("operationName", "")),
                depth=depth,
                offset_us=starts[sid] - first,
                duration_us=int(span.get("duration") or 0),
                error=tags.get("error") is True or tags.get("otel.status_code") == "ERROR",
                kafka=_kafka(tags),
                tags={k: tags[k] for k in SHOWN_TAGS if k in tags},
            )
        )
        stack.extend((kid, depth + 1) for kid in reversed(children[sid]))
    end = max(starts[sid] + int(spans[sid].get("duration") or 0) for sid in spans)
    services: list[str] = []
    for row in rows:
        if row.service not in services:
            services.append(row.service)
    return Waterfall(trace_id, first, end - first, tuple(services), tuple(rows))
