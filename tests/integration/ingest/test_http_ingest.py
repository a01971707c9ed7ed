"""HTTP/JSON ingest on the real broker: per-event acks, 401, 403, 413 and 429 with Retry-After."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from google.protobuf import json_format

from fleetpipe.core.settings import KafkaSettings, Topics
from fleetpipe.pb.v1 import deadletter_pb2, telemetry_pb2
from fleetpipe_dev.stack.procs import free_port
from fleetpipe_dev.testing import read_all, read_events
from fleetpipe_loadtest.fleet import Fleet
from fleetpipe_loadtest.records import now_us
from support.builders import changed
from support.ingest import TOKEN_A, TOKEN_B, StartIngest
from support.messages import decoded, headers_of

pytestmark = pytest.mark.integration


def post(
    port: int,
    fleet: str,
    body: bytes,
    *,
    token: str | None = TOKEN_A,
    content_type: str = "application/json",
) -> tuple[int, dict[str, str], Any]:
    headers = {"Content-Type": content_type}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/fleets/{fleet}/telemetry",
        data=body,
        headers=headers,
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, dict(reply.headers), json.loads(reply.read())
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), json.loads(err.read())


def events(n: int, fleet: str = "fleet-a") -> list[telemetry_pb2.Telemetry]:
    sim = Fleet(n, seed=9, fleet_id=fleet, start_time_us=now_us() - 1_000_000)
    return next(iter(sim.run(1))).messages()


def as_json(evs: list[telemetry_pb2.Telemetry]) -> bytes:
    return json.dumps([json_format.MessageToDict(e) for e in evs]).encode()


@pytest.fixture
def http_port(start_ingest: StartIngest, topics: Topics) -> int:
    port = free_port()
    start_ingest(
        topics,
        FLEET_HTTP__PORT=str(port),
        FLEET_HTTP__HOST="127.0.0.1",
        # Small, so a body over it still fits the socket's buffers and the client reads the 413.
        FLEET_HTTP__MAX_BODY_BYTES="16384",
    )
    return port


def test_each_event_is_accepted_or_rejected_with_its_reason_like_the_grpc_ack(
    http_port: int, topics: Topics, kafka_settings: KafkaSettings
) -> None:
    good = events(4)
    bad = changed(good[1], {"seq": 99, "motion__speed_kmh": -5.0})
    body = [json_format.MessageToDict(e) for e in (good[0], bad, good[2])]
    body.append({"vehicle_id": "x", "no_such_field": 1})
    status, _, ack = post(http_port, "fleet-a", json.dumps(body).encode())
    assert status == 200
    assert ack["accepted"] == 2
    rejected = {r["index"]: (r["code"], r["field"]) for r in ack["rejected"]}
    assert rejected == {
        1: ("REJECT_CODE_OUT_OF_RANGE", "motion.speed_kmh"),
        3: ("REJECT_CODE_MALFORMED", ""),
    }
    assert "no_such_field" in ack["rejected"][1]["reason"]

    # NDJSON: one event per line, the same answer.
    ndjson = b"\n".join(json.dumps(json_format.MessageToDict(e)).encode() for e in good[3:])
    status, _, ack = post(http_port, "fleet-a", ndjson, content_type="application/x-ndjson")
    assert (status, ack["accepted"], ack["rejected"]) == (200, 1, [])

    raw = read_events(kafka_settings, topics.raw)
    stored = {(e.vehicle_id, e.seq) for e in (decoded(m, telemetry_pb2.Telemetry) for m in raw)}
    assert stored == {(e.vehicle_id, e.seq) for e in (good[0], good[2], good[3])}
    letters = read_all(kafka_settings, topics.deadletter)
    assert sorted(headers_of(m)["fp-reason"] for m in letters) == [b"invalid_event"] * 2
    errors = sorted(decoded(m, deadletter_pb2.DeadLetter).error for m in letters)
    assert any("motion.speed_kmh" in e for e in errors)
    assert any("no_such_field" in e for e in errors)


def test_a_missing_or_unknown_token_is_401(http_port: int) -> None:
    body = as_json(events(1))
    status, headers, reply = post(http_port, "fleet-a", body, token=None)
    assert (status, headers.get("www-authenticate")) == (401, "Bearer")
    assert "Bearer" in reply["detail"]
    status, _, reply = post(http_port, "fleet-a", body, token="not-a-token-0123456789")
    assert (status, reply["detail"]) == (401, "unknown token")


def test_another_fleet_s_vehicle_is_403_and_nothing_of_the_body_is_taken(
    http_port: int, topics: Topics, kafka_settings: KafkaSettings
) -> None:
    mine, theirs = events(1), events(1, fleet="fleet-b")
    # The path names fleet-b, the token is fleet-a's.
    status, _, reply = post(http_port, "fleet-b", as_json(theirs))
    assert status == 403 and "fleet-a" in reply["detail"]
    # The path and token agree, but an event claims fleet-b: the whole body is refused.
    status, _, reply = post(http_port, "fleet-a", as_json(mine + theirs))
    assert status == 403 and "fleet-b" in reply["detail"]
    status, _, _ = post(http_port, "fleet-b", as_json(theirs), token=TOKEN_B)
    assert status == 200
    raw = read_events(kafka_settings, topics.raw)
    assert {decoded(m, telemetry_pb2.Telemetry).fleet_id for m in raw} == {"fleet-b"}


def test_a_body_that_is_not_json_telemetry_is_400_and_a_huge_one_413(http_port: int) -> None:
    status, _, reply = post(http_port, "fleet-a", b"{not json")
    assert status == 400 and "not JSON" in reply["detail"]
    status, _, _ = post(http_port, "fleet-a", b"[" + b" " * 20_000 + b"]")
    assert status == 413


def test_backpressure_is_429_with_retry_after(start_ingest: StartIngest, topics: Topics) -> None:
    port = free_port()
    start_ingest(
        topics,
        FLEET_HTTP__PORT=str(port),
        FLEET_HTTP__HOST="127.0.0.1",
        FLEET_HTTP__RETRY_AFTER_S="3",
        FLEET_MAX_INFLIGHT_EVENTS="5",
    )
    status, headers, reply = post(port, "fleet-a", as_json(events(6)))
    assert (status, headers.get("retry-after")) == (429, "3")
    assert "awaiting Kafka" in reply["detail"]
    status, _, ack = post(port, "fleet-a", as_json(events(5)))
    assert (status, ack["accepted"]) == (200, 5)
