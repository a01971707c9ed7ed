"""A crash, sent over gRPC to a real ingest process, read back from Jaeger as one trace with a
span from every service; the services' /metrics moving while it happens; and a fleet's token
that cannot reach another fleet's vehicle.

The whole pipeline runs as processes — ingest, enrichment, detection, notification and the
storage writer — on the session's Kafka, PostgreSQL and Jaeger, with the Twilio-contract server
standing in for Twilio. It is built once for the module: five processes take a while to start.
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from fleetpipe.core.kafka import Admin
from fleetpipe.core.settings import KafkaSettings, Topics
from fleetpipe.core.topics import topic_specs
from fleetpipe.pb.v1 import alert_pb2, deadletter_pb2, ingest_pb2, ingest_pb2_grpc, telemetry_pb2
from fleetpipe.registry import Vehicle, write_csv
from fleetpipe_dev.stack.jaeger import JaegerServer
from fleetpipe_dev.stack.procs import free_port
from fleetpipe_dev.testing import ServiceProcess, read_all, service_env, wait_for
from fleetpipe_dev.twilio import TwilioContractServer
from fleetpipe_loadtest import synthetic
from support.messages import value_of
from support.servers import BrokerHandle, PostgresHandle

pytestmark = pytest.mark.e2e

TOKEN = "token-fleet-trace-0123456789abcdef"
FLEET = "fleet-trace"
PHONE = "+31612345678"
SENDER = "+15005550006"
VEHICLES = [f"{FLEET}-veh-{i:06d}" for i in range(4)]
# A vehicle of another fleet, registered with its own driver's phone.
OTHER_FLEET = "fleet-other"
OTHER_VEHICLE = "hauler-000001"
OTHER_PHONE = "+31698765432"

# Spans leave each process within a fifth of a second, not the SDK's default five.
OTEL_FAST = {"OTEL_BSP_SCHEDULE_DELAY": "200", "OTEL_BSP_EXPORT_TIMEOUT": "5000"}


@dataclass
class Pipeline:
    topics: Topics
    jaeger: JaegerServer
    twilio: TwilioContractServer
    kafka: KafkaSettings
    schema: str  # the storage writer's PostgreSQL schema
    services: dict[str, ServiceProcess] = field(default_factory=dict)
    ingest_ports: dict[str, int] = field(default_factory=dict)
    seqs: dict[str, int] = field(default_factory=dict)

    def publish(
        self, events: list[telemetry_pb2.Telemetry], *, via: str = "ingest", rejected: int = 0
    ) -> ingest_pb2.PublishAck:
        """One Publish call to the named ingest process, acknowledged as expected."""
        with grpc.insecure_channel(f"127.0.0.1:{self.ingest_ports[via]}") as channel:
            stub = ingest_pb2_grpc.TelemetryIngestStub(channel)
            ack: ingest_pb2.PublishAck = stub.Publish(
                ingest_pb2.TelemetryBatch(batch_id=int(time.time()), events=events),
                metadata=(("authorization", f"Bearer {TOKEN}"),),
                timeout=30,
            )
        assert (ack.accepted, len(ack.rejected)) == (len(events) - rejected, rejected), ack
        return ack

    def events(self, vehicle: str, n: int, *, crash_last: bool = False) -> list[Any]:
        """``n`` ordinary events of ``vehicle`` (seq continuing), the last one a crash alarm,
        all claiming the token's fleet."""
        out = []
        for _ in range(n):
            seq = self.seqs.get(vehicle, 0) + 1
            self.seqs[vehicle] = seq
            t = synthetic.telemetry([*VEHICLES, OTHER_VEHICLE].index(vehicle), seq, fleet=FLEET)
            t.vehicle_id = vehicle
            out.append(t)
        if crash_last:
            out[-1].alarms.crash = True
            out[-1].motion.speed_kmh = 0.0
        return out

    def check_alive(self) -> None:
        for proc in self.services.values():
            proc.check_alive()


def _start(
    name: str, module: str, env: dict[str, str], workdir: Path, pipeline: Pipeline
) -> ServiceProcess:
    proc = ServiceProcess(module, env, workdir / f"{name}.log").start()
    pipeline.services[name] = proc
    return proc


@pytest.fixture(scope="module")
def pipeline(
    kafka: BrokerHandle,
    postgres: PostgresHandle,
    jaeger: JaegerServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Pipeline]:
    workdir = tmp_path_factory.mktemp("tracing")
    suffix = uuid.uuid4().hex[:10]
    topics = Topics.with_suffix(suffix)
    Admin(kafka.settings).ensure_topics(topic_specs(topics, 3))
    schema = f"t_{suffix}"
    with psycopg.connect(postgres.dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    registry = workdir / "vehicles.csv"
    write_csv(
        [
            *(
                Vehicle(v, FLEET, "van", driver_id=f"d-{i}", driver_phone=PHONE)
                for i, v in enumerate(VEHICLES)
            ),
            Vehicle(OTHER_VEHICLE, OTHER_FLEET, "van", driver_id="d-o", driver_phone=OTHER_PHONE),
        ],
        registry,
    )
    otel = {"OTEL_EXPORTER_OTLP_ENDPOINT": jaeger.otlp_endpoint, **OTEL_FAST}
    database = {"FLEET_POSTGRES__DSN": postgres.dsn, "FLEET_POSTGRES__SCHEMA_NAME": schema}
    with TwilioContractServer() as twilio:
        run = Pipeline(topics, jaeger, twilio, kafka.settings, schema)

        def env(extra: dict[str, str]) -> dict[str, str]:
            return service_env(kafka.settings, topics, {**otel, **extra})

        try:
            for name, module, extra in (
                ("enrichment", "fleetpipe.enrichment", {"FLEET_REGISTRY_PATH": str(registry)}),
                ("detection", "fleetpipe.detection", {"FLEET_KAFKA__MAX_BATCH": "500"}),
                (
                    "notification",
                    "fleetpipe.notification",
                    {
                        **database,
                        "FLEET_REGISTRY_PATH": str(registry),
                        "FLEET_TWILIO__ACCOUNT_SID": twilio.account_sid,
                        "FLEET_TWILIO__AUTH_TOKEN": twilio.auth_token,
                        "FLEET_TWILIO__API_BASE_URL": twilio.url,
                        "FLEET_TWILIO__SMS_FROM": SENDER,
                    },
                ),
                (
                    "storage-writer",
                    "fleetpipe.storage_writer",
                    {
                        **database,
                        "FLEET_LAKE__PATH": str(workdir / "lake"),
                        "FLEET_LATEST_INTERVAL_S": "0",
                    },
                ),
            ):
                group = {"FLEET_GROUP_ID": f"{name}-{suffix}", "FLEET_INSTANCE_ID": name}
                _start(name, module, env({**group, **extra}), workdir, run)
            # Two ingest processes: one traces every event (the crash trace from its start)
            # and knows the registry; one samples none (alerts must be traced all the same)
            # and has no registry, so enrichment is the fleet boundary behind it.
            for name, sampler in (
                (
                    "ingest",
                    {"OTEL_TRACES_SAMPLER": "always_on", "FLEET_REGISTRY_PATH": str(registry)},
                ),
                (
                    "ingest-unsampled",
                    {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"},
                ),
            ):
                port = free_port()
                run.ingest_ports[name] = port
                extra = {
                    "FLEET_GRPC_HOST": "127.0.0.1",
                    "FLEET_GRPC_PORT": str(port),
                    "FLEET_AUTH__TOKENS": json.dumps({TOKEN: FLEET}),
                    "FLEET_INSTANCE_ID": name,
                    **sampler,
                }
                _start(name, "fleetpipe.ingest", env(extra), workdir, run)

            def ready() -> bool:
                run.check_alive()
                return all(p.ready() for p in run.services.values())

            wait_for(ready, timeout=120, interval=0.5, what="the five services to be ready")
            yield run
        finally:
            for proc in run.services.values():
                if proc.alive():
                    proc.stop()
            with psycopg.connect(postgres.dsn, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


SERVICES = {"ingest", "enrichment", "detection", "notification", "storage-writer"}


class Trace:
    """One trace of Jaeger's query API, with its spans by id and their services."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        processes = {pid: p["serviceName"] for pid, p in data["processes"].items()}
        self.spans: dict[str, dict[str, Any]] = {s["spanID"]: s for s in data["spans"]}
        self.service = {sid: processes[s["processID"]] for sid, s in self.spans.items()}

    def services(self) -> set[str]:
        return set(self.service.values())

    def find(self, service: str, name: str) -> list[dict[str, Any]]:
        return [
            s
            for sid, s in self.spans.items()
            if self.service[sid] == service and s["operationName"] == name
        ]

    def one(self, service: str, name: str) -> dict[str, Any]:
        found = self.find(service, name)
        assert len(found) == 1, (service, name, self.summary())
        return found[0]

    def parent(self, span: dict[str, Any]) -> dict[str, Any] | None:
        for ref in span.get("references") or []:
            if ref["refType"] == "CHILD_OF" and ref["spanID"] in self.spans:
                return self.spans[ref["spanID"]]
        return None

    def summary(self) -> list[str]:
        return sorted(f"{self.service[sid]}:{s['operationName']}" for sid, s in self.spans.items())


def tags(span: dict[str, Any]) -> dict[str, Any]:
    return {t["key"]: t["value"] for t in span.get("tags") or []}


def _traces(pipeline: Pipeline, service: str) -> list[Trace]:
    found = pipeline.jaeger._get("/api/traces", service=service, limit=500, lookback="1h")
    return [Trace(t) for t in found.get("data") or []]


def _trace_of(
    pipeline: Pipeline,
    service: str,
    tag: dict[str, Any],
    want: set[str],
    spans: Iterable[tuple[str, str]] = (),
) -> Trace:
    """The trace of ``service`` with a span tagged ``tag``, once spans of ``want`` are all in
    it, and the named ``spans`` too: a service's spans reach Jaeger one export at a time
    (filtered here rather than by the query API: the tags' types stay exact)."""
    named = list(spans)

    def complete() -> Trace | None:
        pipeline.check_alive()
        for trace in _traces(pipeline, service):
            tagged = any(tag.items() <= tags(s).items() for s in trace.spans.values())
            if (
                tagged
                and want <= trace.services()
                and all(trace.find(svc, name) for svc, name in named)
            ):
                return trace
        return None

    trace = wait_for(complete, timeout=120, interval=1.0, what=f"a trace with {sorted(want)}")
    assert trace is not None
    return trace


def _written(pipeline: Pipeline, trace: Trace, stored: dict[str, Any]) -> dict[str, Any]:
    """The storage writer's batch write of ``stored``'s record: its child when the record was
    the batch's only traced one, else a span of its own trace that links to it."""
    for span in trace.find("storage-writer", "postgres write"):
        if trace.parent(span) is stored:
            return span

    def linked() -> dict[str, Any] | None:
        for other in _traces(pipeline, "storage-writer"):
            for span in other.find("storage-writer", "postgres write"):
                refs = span.get("references") or []
                if any(r["spanID"] == stored["spanID"] for r in refs):
                    return span
        return None

    found = wait_for(linked, timeout=60, interval=1.0, what="the batch write linking the record")
    assert found is not None
    return found


def _ordered(trace: Trace, chain: list[dict[str, Any]]) -> None:
    """Each span of ``chain`` is the child of the one before and starts no earlier."""
    for parent, child in itertools.pairwise(chain):
        assert trace.parent(child) is parent, (child["operationName"], trace.summary())
        assert child["startTime"] >= parent["startTime"], (parent, child)


def test_a_crash_is_one_trace_from_ingest_to_the_driver_and_the_database(
    pipeline: Pipeline,
) -> None:
    vehicle = VEHICLES[0]
    topics = pipeline.topics
    pipeline.publish(pipeline.events(vehicle, 3, crash_last=True))
    crash_seq = pipeline.seqs[vehicle]
    wait_for(
        pipeline.twilio.contract.calls,
        timeout=120,
        what="the driver to be called about the crash",
    )
    trace = _trace_of(
        pipeline,
        "ingest",
        {"fleetpipe.vehicle_id": vehicle, "fleetpipe.seq": crash_seq},
        SERVICES,
        spans={
            ("ingest", f"{topics.raw} publish"),
            ("enrichment", f"{topics.raw} process"),
            ("detection", f"{topics.enriched} process"),
            ("detection", "alert crash"),
            ("notification", f"{topics.alerts} process"),
            ("storage-writer", f"{topics.enriched} process"),
            ("storage-writer", f"{topics.alerts} process"),
        },
    )

    publish = trace.one("ingest", f"{topics.raw} publish")
    assert trace.parent(publish) is None, "ingest starts the trace"
    enrich = trace.one("enrichment", f"{topics.raw} process")
    detect = trace.one("detection", f"{topics.enriched} process")
    alert = trace.one("detection", "alert crash")
    notify = trace.one("notification", f"{topics.alerts} process")
    _ordered(trace, [publish, enrich, detect, alert, notify])
    # The notification called Twilio (a voice call and a text, crash's channels) inside its span.
    calls = trace.find("notification", "twilio voice") + trace.find("notification", "twilio sms")
    assert calls and all(trace.parent(c) is notify for c in calls), trace.summary()
    assert {tags(c)["fleetpipe.delivery.status"] for c in calls} == {"SENT"}

    # The storage writer stored the enriched event (a child of enrichment's span) and the alert
    # (a child of the alert's span).
    stored_event = trace.one("storage-writer", f"{topics.enriched} process")
    stored_alert = trace.one("storage-writer", f"{topics.alerts} process")
    _ordered(trace, [publish, enrich, stored_event])
    _ordered(trace, [alert, stored_alert])
    write = _written(pipeline, trace, stored_event)
    assert write["startTime"] >= stored_event["startTime"]
    assert tags(write)["db.system"] == "postgresql"

    # The Kafka hops carry the messaging conventions' attributes.
    for span, topic, operation in (
        (publish, topics.raw, "publish"),
        (enrich, topics.raw, "process"),
        (detect, topics.enriched, "process"),
        (notify, topics.alerts, "process"),
        (stored_event, topics.enriched, "process"),
    ):
        t = tags(span)
        assert t["messaging.system"] == "kafka"
        assert t["messaging.destination.name"] == topic
        assert t["messaging.operation"] == operation
        assert t["messaging.destination.partition.id"].isdigit()
        assert int(t["messaging.kafka.offset"]) >= 0
    assert {trace.data["traceID"]} == {s["traceID"] for s in trace.spans.values()}


def test_an_alert_is_traced_even_when_its_event_was_not_sampled(pipeline: Pipeline) -> None:
    vehicle = VEHICLES[1]
    topics = pipeline.topics
    pipeline.publish(pipeline.events(vehicle, 2, crash_last=True), via="ingest-unsampled")
    trace = _trace_of(
        pipeline,
        "detection",
        {"fleetpipe.vehicle_id": vehicle, "fleetpipe.alert.rule": "crash"},
        {"detection", "notification", "storage-writer"},
        spans={
            ("notification", f"{topics.alerts} process"),
            ("storage-writer", f"{topics.alerts} process"),
        },
    )
    assert not {"ingest", "enrichment"} & trace.services(), "the event itself was not sampled"
    alert = trace.one("detection", "alert crash")
    assert trace.parent(alert) is None, "the alert starts a trace of its own"
    assert tags(alert)["fleetpipe.alert.event_traced"] is False
    notify = trace.one("notification", f"{topics.alerts} process")
    stored = trace.one("storage-writer", f"{topics.alerts} process")
    _ordered(trace, [alert, notify])
    _ordered(trace, [alert, stored])


def metrics(proc: ServiceProcess) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a service's /metrics, by name and labels."""
    status, text = proc.get("/metrics")
    assert status == 200, text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(
    scraped: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in scraped.items() if n == name and wanted <= ls)


def test_the_services_metrics_count_what_passes_through(pipeline: Pipeline) -> None:
    topics = pipeline.topics
    services = pipeline.services
    before = {name: metrics(proc) for name, proc in services.items()}
    vehicle = VEHICLES[2]
    events = pipeline.events(vehicle, 20, crash_last=True)
    pipeline.publish(events)
    invalid = pipeline.events(VEHICLES[3], 1)
    invalid[0].seq = 0
    pipeline.publish(invalid, rejected=1)

    def stored_and_notified() -> bool:
        pipeline.check_alive()
        now = {name: metrics(services[name]) for name in ("storage-writer", "notification")}
        rows = value(now["storage-writer"], "fleetpipe_storage_rows_total", table="telemetry")
        sent = value(now["notification"], "fleetpipe_notification_provider_calls_total")
        return rows - value(
            before["storage-writer"], "fleetpipe_storage_rows_total", table="telemetry"
        ) >= len(events) and sent > value(
            before["notification"], "fleetpipe_notification_provider_calls_total"
        )

    wait_for(stored_and_notified, timeout=120, interval=0.5, what="the events stored and notified")
    after = {name: metrics(proc) for name, proc in services.items()}

    def moved(service: str, name: str, **labels: str) -> float:
        return value(after[service], name, **labels) - value(before[service], name, **labels)

    assert moved("ingest", "fleetpipe_ingest_events_total", outcome="accepted") == len(events)
    assert moved("ingest", "fleetpipe_events_rejected_total", reason="missing_field") == 1
    assert moved("ingest", "fleetpipe_deadletters_total", reason="invalid_event") == 1
    assert moved("ingest", "fleetpipe_records_produced_total", topic=topics.raw) == len(events)
    assert moved("enrichment", "fleetpipe_records_consumed_total", topic=topics.raw) == len(events)
    assert moved("enrichment", "fleetpipe_records_produced_total", topic=topics.enriched) == len(
        events
    )
    assert moved("detection", "fleetpipe_records_consumed_total", topic=topics.enriched) == len(
        events
    )
    assert moved("detection", "fleetpipe_detection_alerts_total", rule="crash", state="open") == 1
    assert moved("notification", "fleetpipe_notification_provider_calls_total", result="ok") >= 1
    assert moved("notification", "fleetpipe_notification_outcomes_total", status="SENT") >= 1
    for service in ("enrichment", "detection", "notification", "storage-writer"):
        assert moved(service, "fleetpipe_batch_size_count") >= 1, service
        assert moved(service, "fleetpipe_batch_seconds_count") >= 1, service
        assert moved(service, "fleetpipe_end_to_end_latency_seconds_count") >= 1, service
    assert moved("storage-writer", "fleetpipe_storage_db_seconds_count") >= 1
    assert moved("notification", "fleetpipe_notification_ledger_seconds_count") >= 1
    assert moved("ingest", "fleetpipe_ingest_ack_seconds_count") == 2

    def lag_reported() -> bool:
        scraped = metrics(services["storage-writer"])
        return any(n == "fleetpipe_consumer_lag" for n, _ in scraped)

    wait_for(lag_reported, timeout=30, what="the storage writer's consumer lag gauge")


def test_a_fleets_token_cannot_reach_another_fleets_vehicle(
    pipeline: Pipeline, postgres: PostgresHandle
) -> None:
    topics = pipeline.topics
    # Ingest with the registry refuses the event, naming the vehicle, never the other fleet.
    ack = pipeline.publish(pipeline.events(OTHER_VEHICLE, 3, crash_last=True), rejected=3)
    assert {(r.code, r.field) for r in ack.rejected} == {
        (ingest_pb2.REJECT_CODE_NOT_FLEET_VEHICLE, "vehicle_id")
    }
    assert all(OTHER_FLEET not in r.reason for r in ack.rejected)
    # An ingest without the registry lets it through; enrichment, which has it, stops it.
    pipeline.publish(pipeline.events(OTHER_VEHICLE, 3, crash_last=True), via="ingest-unsampled")
    # Then a crash of the fleet's own vehicle, through both: once it is stored and its driver
    # called, the refused events have had every chance to do harm.
    mine = VEHICLES[3]
    pipeline.publish(pipeline.events(mine, 2, crash_last=True), via="ingest-unsampled")
    schema = pipeline.schema

    def stored(vehicle: str) -> int:
        with psycopg.connect(postgres.dsn, autocommit=True) as conn:
            row = conn.execute(
                f'SELECT count(*) FROM "{schema}".telemetry WHERE vehicle_id = %s', (vehicle,)
            ).fetchone()
        return int(row[0]) if row else 0

    def mine_done() -> bool:
        pipeline.check_alive()
        told = [m for m in pipeline.twilio.contract.calls() if m.get("to") == PHONE]
        return stored(mine) >= 2 and bool(told)

    wait_for(mine_done, timeout=120, interval=0.5, what="the fleet's own crash stored and called")
    letters = [
        deadletter_pb2.DeadLetter.FromString(value_of(m))
        for m in read_all(pipeline.kafka, topics.deadletter)
        if m.key() == OTHER_VEHICLE.encode()
    ]
    by_service = Counter(d.service for d in letters)
    assert by_service == {"ingest": 3, "enrichment": 3}, "each refused event dead-lettered once"
    for d in letters:
        if d.service == "enrichment":
            assert d.source_topic == topics.raw
            assert "not a vehicle of the event's fleet" in d.error
        else:
            assert d.error.startswith("vehicle_id: ") and OTHER_FLEET not in d.error
    alerts = [
        alert_pb2.Alert.FromString(value_of(m)) for m in read_all(pipeline.kafka, topics.alerts)
    ]
    assert OTHER_VEHICLE not in {a.vehicle_id for a in alerts}
    assert mine in {a.vehicle_id for a in alerts}
    contract = pipeline.twilio.contract
    assert OTHER_PHONE not in {m.get("to") for m in contract.messages() + contract.calls()}
    assert stored(OTHER_VEHICLE) == 0
