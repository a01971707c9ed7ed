"""The ingest server on the real broker: acks, validation, dead letters, auth, limits."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from fleetpipe.core.kafka import Admin
from fleetpipe.core.keygroups import KeyGroups
from fleetpipe.core.settings import KafkaSettings, Topics
from fleetpipe.pb.v1 import deadletter_pb2, ingest_pb2, ingest_pb2_grpc, telemetry_pb2
from fleetpipe_dev.testing import end_offsets, read_all, read_events, wait_for
from fleetpipe_loadtest.fleet import Fleet
from fleetpipe_loadtest.records import now_us
from support.builders import changed
from support.ingest import Ingest, StartIngest
from support.messages import decoded, headers_of

pytestmark = pytest.mark.integration


def fleet_events(
    vehicles: int, ticks: int, fleet: str = "fleet-a"
) -> list[list[telemetry_pb2.Telemetry]]:
    """``ticks`` lists of events of a simulated fleet whose clock ends about now."""
    sim = Fleet(vehicles, seed=3, fleet_id=fleet, start_time_us=now_us() - ticks * 1_000_000)
    return [t.messages() for t in sim.run(ticks)]


def batch(batch_id: int, events: list[telemetry_pb2.Telemetry]) -> ingest_pb2.TelemetryBatch:
    return ingest_pb2.TelemetryBatch(batch_id=batch_id, events=events)


def test_accepted_events_reach_the_raw_topic_keyed_by_vehicle_with_ingest_time(
    ingest: Ingest, kafka_settings: KafkaSettings
) -> None:
    ticks = fleet_events(20, 4)
    stub = ingest.stub()
    before = now_us()
    ack = stub.Publish(batch(1, ticks[0]), metadata=ingest.auth())
    assert (ack.batch_id, ack.accepted, list(ack.rejected), ack.late) == (1, 20, [], 0)
    acks = list(stub.Stream(iter([batch(i, ticks[i]) for i in (2, 3, 1)]), metadata=ingest.auth()))
    assert [(a.batch_id, a.accepted) for a in acks] == [(2, 20), (3, 20), (1, 20)]
    after = now_us()

    records = read_events(kafka_settings, ingest.topics.raw)
    count = len(end_offsets(kafka_settings, ingest.topics.raw))
    groups = KeyGroups()
    sent = {(e.vehicle_id, e.seq): e for tick in ticks for e in tick}
    got = {}
    partitions: dict[str, set[int | None]] = {}
    for msg in records:
        e = decoded(msg, telemetry_pb2.Telemetry)
        assert msg.partition() == groups.partition(e.vehicle_id, count), "placed by key group"
        assert before <= e.ingest_time_us <= after
        partitions.setdefault(e.vehicle_id, set()).add(msg.partition())
        got[(e.vehicle_id, e.seq)] = e
    assert len(records) == len(sent) == 80
    for key, e in got.items():
        stamped = telemetry_pb2.Telemetry()
        stamped.CopyFrom(sent[key])
        stamped.ingest_time_us = e.ingest_time_us
        assert e == stamped
    assert all(len(p) == 1 for p in partitions.values()), "a vehicle's events share a partition"


M, R, F, X = (
    ingest_pb2.REJECT_CODE_MISSING_FIELD,
    ingest_pb2.REJECT_CODE_OUT_OF_RANGE,
    ingest_pb2.REJECT_CODE_FUTURE_EVENT,
    ingest_pb2.REJECT_CODE_MALFORMED,
)
# One of each kind of invalid event (the unit tests cover every rule): changes, code, field.
INVALID: list[tuple[dict[str, object], int, str]] = [
    ({"vehicle_id": ""}, M, "vehicle_id"),
    ({"vehicle_id": "veh 1"}, X, "vehicle_id"),
    ({"seq": 0}, M, "seq"),
    ({"event_time_us": 0}, M, "event_time_us"),
    ({"event_time_us": 2**62}, F, "event_time_us"),
    ({"location": None}, M, "location"),
    ({"location__lat": 91.0}, R, "location.lat"),
    ({"location__lon": -181.0}, R, "location.lon"),
    ({"motion__speed_kmh": -3.0}, R, "motion.speed_kmh"),
    ({"engine__fuel_pct": 120.0}, R, "engine.fuel_pct"),
    ({"battery__pct": -1.0}, R, "battery.pct"),
]


def test_each_invalid_event_is_rejected_with_its_reason_and_dead_lettered_while_the_rest_pass(
    ingest: Ingest, kafka_settings: KafkaSettings
) -> None:
    good = fleet_events(len(INVALID) + 1, 1)[0]
    events: list[telemetry_pb2.Telemetry] = []
    expected: dict[int, tuple[int, str, bytes]] = {}
    for n, (changes, code, field) in enumerate(INVALID):
        events.append(good[n])
        bad = changed(good[n], {"seq": 1000 + n, **changes})
        expected[len(events)] = (code, field, bad.SerializeToString())
        events.append(bad)
    events.append(good[-1])
    ack = ingest.stub().Publish(batch(9, events), metadata=ingest.auth())

    rejected = {r.index: (r.code, r.field) for r in ack.rejected}
    assert rejected == {i: (code, field) for i, (code, field, _) in expected.items()}
    assert all(r.reason for r in ack.rejected)
    assert ack.accepted == len(good)

    raw = read_events(kafka_settings, ingest.topics.raw)
    stored = sorted(decoded(m, telemetry_pb2.Telemetry).vehicle_id for m in raw)
    assert stored == sorted(e.vehicle_id for e in good)
    letters = read_all(kafka_settings, ingest.topics.deadletter)
    assert len(letters) == len(expected)
    by_payload = {payload: field for _, field, payload in expected.values()}
    for msg in letters:
        headers = headers_of(msg)
        assert headers["fp-reason"] == b"invalid_event"
        assert headers["fp-service"] == b"ingest"
        assert headers["fp-source-topic"] == b""
        letter = decoded(msg, deadletter_pb2.DeadLetter)
        assert letter.error.startswith(f"{by_payload.pop(letter.payload)}: ")
        assert (letter.reason, letter.service) == ("invalid_event", "ingest")
    assert by_payload == {}, "every rejected event is dead-lettered once, untouched"


def test_a_late_event_is_accepted_and_flagged_and_a_missing_fleet_is_filled_in(
    ingest: Ingest, kafka_settings: KafkaSettings
) -> None:
    old, fresh = fleet_events(1, 2)[0][0], fleet_events(1, 1)[0][0]
    old.event_time_us = now_us() - 3600 * 1_000_000
    fresh.ClearField("fleet_id")
    fresh.seq = old.seq + 1
    ack = ingest.stub().Publish(batch(1, [old, fresh]), metadata=ingest.auth())
    assert (ack.accepted, ack.late) == (2, 1)
    stored = sorted(
        (
            decoded(m, telemetry_pb2.Telemetry)
            for m in read_events(kafka_settings, ingest.topics.raw)
        ),
        key=lambda e: e.seq,
    )
    assert [(e.late, e.fleet_id) for e in stored] == [(True, "fleet-a"), (False, "fleet-a")]


@pytest.mark.parametrize(
    ("header", "code"),
    [
        pytest.param(None, grpc.StatusCode.UNAUTHENTICATED, id="no-token"),
        pytest.param("Bearer " + "x" * 40, grpc.StatusCode.UNAUTHENTICATED, id="unknown-token"),
        pytest.param("{a}", grpc.StatusCode.UNAUTHENTICATED, id="not-bearer"),
        pytest.param("Bearer {b}", grpc.StatusCode.PERMISSION_DENIED, id="cross-fleet"),
    ],
)
def test_unauthenticated_and_cross_fleet_calls_are_refused_as_a_whole(
    ingest: Ingest, kafka_settings: KafkaSettings, header: str | None, code: grpc.StatusCode
) -> None:
    # fleet-a's vehicles, sent with no token, a wrong one, or fleet-b's token
    events = fleet_events(5, 1, fleet="fleet-a")[0]
    metadata = (
        ()
        if header is None
        else (("authorization", header.format(a=ingest.token_a, b=ingest.token_b)),)
    )
    stub = ingest.stub()
    with pytest.raises(grpc.RpcError) as publish:
        stub.Publish(batch(1, events), metadata=metadata)
    assert publish.value.code() == code
    with pytest.raises(grpc.RpcError) as stream:
        list(stub.Stream(iter([batch(1, events)]), metadata=metadata))
    assert stream.value.code() == code
    if code == grpc.StatusCode.PERMISSION_DENIED:
        assert "whole batch is refused" in (publish.value.details() or "")
    assert sum(end_offsets(kafka_settings, ingest.topics.raw).values()) == 0
    log = ingest.process.log()
    assert ingest.token_a not in log and ingest.token_b not in log


def test_a_stream_acknowledges_what_came_before_a_refused_batch(ingest: Ingest) -> None:
    mine, theirs = fleet_events(3, 2), fleet_events(3, 1, fleet="fleet-b")
    call = ingest.stub().Stream(
        iter([batch(1, mine[0]), batch(2, mine[1]), batch(3, theirs[0])]), metadata=ingest.auth()
    )
    acks = []
    with pytest.raises(grpc.RpcError) as info:
        for ack in call:
            acks.append(ack.batch_id)
    assert acks == [1, 2]
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_health_checking_reflection_and_http_probes_answer(ingest: Ingest) -> None:
    channel = ingest.channel()
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "fleetpipe.v1.TelemetryIngest"):
        reply = health.Check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING

    refl = reflection_pb2_grpc.ServerReflectionStub(channel)
    [listing] = refl.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    )
    names = {s.name for s in listing.list_services_response.service}
    assert {"fleetpipe.v1.TelemetryIngest", "grpc.health.v1.Health"} <= names
    [files] = refl.ServerReflectionInfo(
        iter(
            [
                reflection_pb2.ServerReflectionRequest(
                    file_containing_symbol="fleetpipe.v1.TelemetryIngest"
                )
            ]
        )
    )
    assert any(b"PublishAck" in f for f in files.file_descriptor_response.file_descriptor_proto)

    assert ingest.process.get("/readyz")[0] == 200
    ingest.stub().Publish(batch(1, fleet_events(2, 1)[0]), metadata=ingest.auth())
    status, metrics = ingest.process.get("/metrics")
    assert status == 200
    assert 'fleetpipe_ingest_events_total{outcome="accepted"} 2.0' in metrics
    assert "fleetpipe_ingest_ack_seconds_bucket" in metrics


def test_oversized_messages_and_batches_are_refused(
    start_ingest: StartIngest, topics: Topics
) -> None:
    ingest = start_ingest(topics, FLEET_MAX_MESSAGE_BYTES="20000", FLEET_MAX_BATCH_EVENTS="50")
    stub = ingest.stub()
    events = [e for tick in fleet_events(60, 3) for e in tick]
    with pytest.raises(grpc.RpcError) as big:
        stub.Publish(batch(1, events), metadata=ingest.auth())  # ~30 KB
    assert big.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    with pytest.raises(grpc.RpcError) as many:
        stub.Publish(batch(2, events[:60]), metadata=ingest.auth())  # < 20 KB but 60 events
    assert many.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert stub.Publish(batch(3, events[:50]), metadata=ingest.auth()).accepted == 50


def test_unconfirmed_batches_give_unavailable_and_the_in_flight_bound_resource_exhausted(
    start_ingest: StartIngest, topics: Topics, kafka_settings: KafkaSettings
) -> None:
    # The raw topic goes away once ingest is ready (it looks again only after an hour here): the
    # broker no longer takes its records, so they stay in flight.
    ingest = start_ingest(
        topics,
        FLEET_TOPIC_CHECK_INTERVAL_S="3600",
        FLEET_ACK_TIMEOUT_S="2",
        FLEET_MAX_INFLIGHT_EVENTS="50",
        FLEET_DELIVERY_TIMEOUT_MS="120000",
    )
    Admin(kafka_settings).delete_topics([topics.raw])
    stub = ingest.stub()
    ticks = fleet_events(40, 2)
    t0 = time.monotonic()
    with pytest.raises(grpc.RpcError) as first:
        stub.Publish(batch(1, ticks[0]), metadata=ingest.auth())
    assert first.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "did not confirm" in (first.value.details() or "")
    assert time.monotonic() - t0 >= 2.0
    t1 = time.monotonic()
    with pytest.raises(grpc.RpcError) as second:
        stub.Publish(batch(2, ticks[1][:20]), metadata=ingest.auth())
    assert second.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert time.monotonic() - t1 < 2.0, "refused at once, not queued"
    with pytest.raises(grpc.RpcError) as streamed:
        list(ingest.stub().Stream(iter([batch(3, ticks[1][:20])]), metadata=ingest.auth()))
    assert streamed.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_a_raw_topic_the_key_groups_cannot_cover_keeps_ingest_not_ready_and_says_why(
    start_ingest: StartIngest, topics: Topics
) -> None:
    """Three partitions and two key groups: no batch can be placed, so ingest is not ready,
    its readiness and its refusals name the setting, and nothing reaches the topic."""
    ingest = start_ingest(topics, wait_ready=False, FLEET_KAFKA__KEY_GROUPS="2")
    # Readiness answers before the first topic check has run: wait for the check's verdict.
    wait_for(
        lambda: "KEY_GROUPS" in ingest.process.get("/readyz")[1],
        timeout=60,
        what="ingest's topic check",
    )
    status, body = ingest.process.get("/readyz")
    assert status == 503
    assert "FLEET_KAFKA__KEY_GROUPS" in body
    with pytest.raises(grpc.RpcError) as refused:
        ingest.stub().Publish(batch(1, fleet_events(5, 1)[0]), metadata=ingest.auth())
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "FLEET_KAFKA__KEY_GROUPS" in (refused.value.details() or "")


def test_with_tls_configured_only_verified_clients_get_through(
    start_ingest: StartIngest, topics: Topics, tmp_path: Path
) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    ingest = start_ingest(topics, FLEET_TLS__CERT_FILE=str(cert), FLEET_TLS__KEY_FILE=str(key))
    events = fleet_events(3, 1)[0]
    secure = grpc.secure_channel(
        ingest.address, grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
    )
    ack = ingest_pb2_grpc.TelemetryIngestStub(secure).Publish(
        batch(1, events), metadata=ingest.auth()
    )
    assert ack.accepted == 3
    with pytest.raises(grpc.RpcError) as plain:
        ingest.stub().Publish(batch(2, events), metadata=ingest.auth(), timeout=10)
    assert plain.value.code() == grpc.StatusCode.UNAVAILABLE


def test_a_malformed_payload_is_refused_and_an_unusual_one_still_stored_correctly(
    ingest: Ingest, kafka_settings: KafkaSettings
) -> None:
    publish = ingest.channel().unary_unary(
        "/fleetpipe.v1.TelemetryIngest/Publish",
        request_serializer=None,
        response_deserializer=ingest_pb2.PublishAck.FromString,
    )
    with pytest.raises(grpc.RpcError) as bad:
        publish(b"\x12\x50not protobuf", metadata=ingest.auth())
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not a valid TelemetryBatch" in (bad.value.details() or "")

    # An unknown field encoded as a (deprecated) group: valid protobuf that ingest's byte
    # scanner does not follow, so it re-serialises the events instead.
    events = fleet_events(4, 1)[0]
    raw = batch(5, events).SerializeToString() + b"\xfb\x07\x08\x01\xfc\x07"
    assert len(ingest_pb2.TelemetryBatch.FromString(raw).events) == 4
    ack = publish(raw, metadata=ingest.auth())
    assert (ack.batch_id, ack.accepted) == (5, 4)
    stored = {
        decoded(m, telemetry_pb2.Telemetry).vehicle_id: m
        for m in read_events(kafka_settings, ingest.topics.raw)
    }
    assert set(stored) == {e.vehicle_id for e in events}
    for e in events:
        got = decoded(stored[e.vehicle_id], telemetry_pb2.Telemetry)
        assert got.ingest_time_us > 0 and got.seq == e.seq and got.fleet_id == "fleet-a"
