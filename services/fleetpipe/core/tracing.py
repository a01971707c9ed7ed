"""OpenTelemetry tracing through Kafka: the only module that touches the OpenTelemetry SDK.

Configured by the standard variables, read once by :func:`setup_tracing` in ``main()``:

* ``OTEL_SDK_DISABLED=true``, ``OTEL_TRACES_EXPORTER=none`` or no
  ``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``: tracing is off. No
  provider, no exporter thread, no header is read or written; a disabled :class:`Tracing` costs
  one attribute check per batch.
* ``OTEL_SERVICE_NAME`` (default: the service's own name), ``OTEL_RESOURCE_ATTRIBUTES``, the
  ``OTEL_EXPORTER_OTLP_*`` and ``OTEL_BSP_*`` variables, as the SDK reads them.
* ``OTEL_TRACES_SAMPLER`` / ``OTEL_TRACES_SAMPLER_ARG``: the head-sampling ratio at the place
  where traces start (ingest, one trace per event). ``traceidratio`` and
  ``parentbased_traceidratio`` take the argument (default 1.0, as the specification says);
  ``always_on`` is 1, ``always_off`` switches tracing off. Unset, FleetPipe samples
  :data:`DEFAULT_RATIO` of the events: at 50K events/s a full trace of every event would cost
  more than the pipeline itself.

Sampling is decided once, at the head: ingest picks the events to trace with a geometric
countdown (O(1) per batch, not a random draw per event) and only those carry ``traceparent`` /
``tracestate`` headers. Downstream, a record without a ``traceparent`` header gets no span at
all; one with a sampled context gets a consumer span, child of the producer's, and the records
made from it carry that span's context on. So the SDK's own sampler is ``ParentBased`` with an
always-on root: every root span FleetPipe starts was chosen already (a head-sampled event, or an
alert, which detection always traces — see ``fleetpipe.detection.handler``).
"""

from __future__ import annotations

import logging
import math
import os
import random
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

log = logging.getLogger(__name__)

# One event in 1000: at 50K events/s, 50 traces a second — plenty to see where time goes, for
# about 1 % of a service's CPU (benchmarks/reports/tracing.md).
DEFAULT_RATIO = 0.001

CONSUMER = SpanKind.CONSUMER
PRODUCER = SpanKind.PRODUCER
CLIENT = SpanKind.CLIENT
INTERNAL = SpanKind.INTERNAL

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"

Headers = list[tuple[str, str | bytes | None]]
Attributes = Mapping[str, str | bool | int | float]

_PROPAGATOR = TraceContextTextMapPropagator()


class _HeaderGetter(Getter[Sequence[tuple[str, Any]]]):
    """Reads W3C trace context from Kafka headers (a list of (name, bytes) pairs)."""

    def get(self, carrier: Sequence[tuple[str, Any]], key: str) -> list[str] | None:
        found = [
            v.decode("latin-1") if isinstance(v, bytes) else str(v)
            for k, v in carrier
            if k == key and v is not None
        ]
        return found or None

    def keys(self, carrier: Sequence[tuple[str, Any]]) -> list[str]:
        return [k for k, _ in carrier]


_GETTER = _HeaderGetter()


@dataclass(frozen=True)
class TracingConfig:
    """What the ``OTEL_*`` variables ask for."""

    enabled: bool
    ratio: float = 0.0
    service_name: str = ""
    endpoint: str = ""
    why_off: str = ""


def config_from_env(service: str, environ: Mapping[str, str] | None = None) -> TracingConfig:
    """Read the standard variables (``environ`` defaults to the process environment)."""
    env = os.environ if environ is None else environ
    name = env.get("OTEL_SERVICE_NAME") or service
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return TracingConfig(False, service_name=name, why_off="OTEL_SDK_DISABLED=true")
    if env.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "none":
        return TracingConfig(False, service_name=name, why_off="OTEL_TRACES_EXPORTER=none")
    endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT", ""
    )
    if not endpoint:
        return TracingConfig(False, service_name=name, why_off="no OTEL_EXPORTER_OTLP_ENDPOINT")
    ratio = sampling_ratio(env.get("OTEL_TRACES_SAMPLER"), env.get("OTEL_TRACES_SAMPLER_ARG"))
    if ratio <= 0.0 and env.get("OTEL_TRACES_SAMPLER", "").endswith("always_off"):
        return TracingConfig(False, service_name=name, why_off="OTEL_TRACES_SAMPLER=always_off")
    return TracingConfig(True, ratio=ratio, service_name=name, endpoint=endpoint)


def sampling_ratio(sampler: str | None, arg: str | None) -> float:
    """The head-sampling ratio that ``OTEL_TRACES_SAMPLER`` / ``_ARG`` name."""
    name = (sampler or "").strip().lower()
    if name in {"always_on", "parentbased_always_on"}:
        return 1.0
    if name in {"always_off", "parentbased_always_off"}:
        return 0.0
    default = DEFAULT_RATIO if not name else 1.0
    if name and name not in {"traceidratio", "parentbased_traceidratio"}:
        log.warning("OTEL_TRACES_SAMPLER=%s is not supported here; sampling %g", name, default)
        return DEFAULT_RATIO
    if arg is None or not arg.strip():
        return default
    try:
        value = float(arg)
    except ValueError:
        log.warning("OTEL_TRACES_SAMPLER_ARG=%r is not a number; sampling %g", arg, default)
        return default
    return min(1.0, max(0.0, value))


class HeadSampler:
    """Picks each event with probability ``ratio``, independently, at O(1) cost per batch.

    The gaps between picked events of a Bernoulli(p) stream are geometric: drawing one gap per
    picked event, instead of one random number per event, keeps unsampled events free.
    """

    def __init__(self, ratio: float, rng: random.Random | None = None) -> None:
        self.ratio = ratio
        self._rng = rng or random.Random()
        self._log_q = math.log1p(-ratio) if 0.0 < ratio < 1.0 else 0.0
        self._countdown = self._gap()

    def _gap(self) -> int:
        if self.ratio >= 1.0:
            return 0
        if self.ratio <= 0.0:
            return 1 << 62
        return int(math.log(1.0 - self._rng.random()) / self._log_q)

    def pick(self, n: int) -> list[int]:
        """Indexes (ascending) of the events of a batch of ``n`` to trace."""
        if self._countdown >= n:
            self._countdown -= n
            return []
        picked = []
        pos = self._countdown
        while pos < n:
            picked.append(pos)
            pos += 1 + self._gap()
        self._countdown = pos - n
        return picked


def messaging_attributes(
    *, topic: str, operation: str, partition: int | None = None, offset: int | None = None
) -> dict[str, str | int]:
    """The messaging semantic-convention attributes of a Kafka span."""
    attrs: dict[str, str | int] = {
        "messaging.system": "kafka",
        "messaging.destination.name": topic,
        "messaging.operation": operation,
        "messaging.operation.type": operation,
    }
    if partition is not None and partition >= 0:
        attrs["messaging.destination.partition.id"] = str(partition)
    if offset is not None and offset >= 0:
        attrs["messaging.kafka.offset"] = offset
    return attrs


class Span:
    """A started span and the headers that carry it to the records made from it."""

    __slots__ = ("headers", "otel")

    def __init__(self, otel: trace.Span) -> None:
        self.otel = otel
        carrier: dict[str, str] = {}
        _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(otel))
        self.headers: Headers = [(k, v.encode()) for k, v in carrier.items()]

    def set(self, name: str, value: str | bool | int | float) -> None:
        self.otel.set_attribute(name, value)

    def fail(self, error: BaseException | str) -> None:
        if isinstance(error, BaseException):
            self.otel.record_exception(error)
        self.otel.set_status(Status(StatusCode.ERROR, str(error)[:200]))

    def end(self, end_ns: int | None = None) -> None:
        self.otel.end(end_ns)


class Tracing:
    """The process's tracer; :meth:`disabled` gives one that does nothing and costs nothing."""

    def __init__(
        self,
        tracer: trace.Tracer | None,
        *,
        ratio: float = 0.0,
        provider: TracerProvider | None = None,
    ) -> None:
        self._tracer = tracer
        self._provider = provider
        self.enabled = tracer is not None
        self.sampler = HeadSampler(ratio if self.enabled else 0.0)

    @classmethod
    def disabled(cls) -> Tracing:
        return cls(None)

    @property
    def ratio(self) -> float:
        return self.sampler.ratio

    # -- starting spans ------------------------------------------------------------------------
    def start_root(
        self,
        name: str,
        *,
        kind: SpanKind = INTERNAL,
        attributes: Attributes | None = None,
        start_ns: int | None = None,
        links: Sequence[Span] = (),
    ) -> Span | None:
        """A new trace (already chosen for tracing); ``None`` when tracing is off."""
        if self._tracer is None:
            return None
        otel = self._tracer.start_span(
            name,
            context=Context(),
            kind=kind,
            attributes=attributes,
            start_time=start_ns,
            links=[Link(s.otel.get_span_context()) for s in links],
        )
        return Span(otel)

    def start_child(
        self,
        name: str,
        parent: Context | Span,
        *,
        kind: SpanKind = INTERNAL,
        attributes: Attributes | None = None,
        start_ns: int | None = None,
    ) -> Span | None:
        if self._tracer is None:
            return None
        context = trace.set_span_in_context(parent.otel) if isinstance(parent, Span) else parent
        otel = self._tracer.start_span(
            name, context=context, kind=kind, attributes=attributes, start_time=start_ns
        )
        return Span(otel)

    def start_linked(
        self,
        name: str,
        links: Sequence[Span],
        *,
        kind: SpanKind = INTERNAL,
        attributes: Attributes | None = None,
    ) -> Span | None:
        """A span for work done for many traced records at once (a batch write): it links to
        each record's span. With a single record it is simply that record's child."""
        if self._tracer is None or not links:
            return None
        if len(links) == 1:
            return self.start_child(name, links[0], kind=kind, attributes=attributes)
        return self.start_root(name, kind=kind, attributes=attributes, links=links)

    @contextmanager
    def linked(
        self, name: str, links: Sequence[Span], *, attributes: Attributes | None = None
    ) -> Iterator[Span | None]:
        with _ended(self.start_linked(name, links, attributes=attributes)) as span:
            yield span

    @contextmanager
    def child(
        self,
        name: str,
        parent: Span | None,
        *,
        kind: SpanKind = INTERNAL,
        attributes: Attributes | None = None,
    ) -> Iterator[Span | None]:
        """A child span of ``parent`` around a block; nothing when ``parent`` is ``None``."""
        span = (
            None
            if parent is None
            else self.start_child(name, parent, kind=kind, attributes=attributes)
        )
        with _ended(span):
            yield span

    # -- consuming ----------------------------------------------------------------------------
    @staticmethod
    def sampled_parent(headers: Sequence[tuple[str, Any]] | None) -> Context | None:
        """The context a record's headers carry, when it is sampled; ``None`` otherwise."""
        if not headers or not any(k == TRACEPARENT for k, _ in headers):
            return None
        context = _PROPAGATOR.extract(headers, getter=_GETTER)
        span_context = trace.get_current_span(context).get_span_context()
        if not span_context.is_valid or not span_context.trace_flags.sampled:
            return None
        return context

    def shutdown(self) -> None:
        """Export what is buffered (bounded by the exporter's timeout) and stop the exporter."""
        if self._provider is not None:
            self._provider.shutdown()
            self._provider = None


@contextmanager
def _ended(span: Span | None) -> Iterator[Span | None]:
    """Ends ``span`` after the block, marked failed when the block raised."""
    try:
        yield span
    except BaseException as exc:
        if span is not None:
            span.fail(exc)
        raise
    finally:
        if span is not None:
            span.end()


def setup_tracing(
    service: str,
    *,
    instance_id: str = "",
    environ: Mapping[str, str] | None = None,
) -> Tracing:
    """The process's :class:`Tracing` from the ``OTEL_*`` variables; call once, in ``main()``."""
    config = config_from_env(service, environ)
    if not config.enabled:
        log.info("tracing off (%s)", config.why_off)
        return Tracing.disabled()
    # Imported here: the exporter pulls in grpc channels and protobuf descriptors that a
    # process without tracing never needs.
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    attributes: dict[str, str] = {"service.namespace": "fleetpipe"}
    if not (environ if environ is not None else os.environ).get("OTEL_SERVICE_NAME"):
        attributes["service.name"] = service
    if instance_id:
        attributes["service.instance.id"] = instance_id
    provider = TracerProvider(
        sampler=ParentBased(root=ALWAYS_ON),
        resource=Resource.create(attributes),
        shutdown_on_exit=False,
    )
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=config.endpoint)))
    log.info(
        "tracing on: service %s, head sampling %g of events, exporting over OTLP",
        config.service_name,
        config.ratio,
    )
    return Tracing(provider.get_tracer("fleetpipe"), ratio=config.ratio, provider=provider)


def now_ns() -> int:
    return time.time_ns()
