"""The MQTT side's pure parts: the topic layout, payload decoding held to the topic, and the
broker's credentials files."""

from __future__ import annotations

import base64
import hashlib

import pytest

from fleetpipe.ingest.mqtt.credentials import (
    BRIDGE_USER,
    CredentialsError,
    broker_auth,
    device_password,
    gateway_password,
)
from fleetpipe.ingest.mqtt.payloads import PayloadError, decode, payload_kind
from fleetpipe.ingest.mqtt.topics import DeviceTopic, Payload, parse_topic, telemetry_topic
from fleetpipe.pb.v1 import ingest_pb2, telemetry_pb2
from fleetpipe.registry import Vehicle

pytestmark = pytest.mark.unit

TOPIC = DeviceTopic("fa", "v1", Payload.TELEMETRY)


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        pytest.param("fleet/fa/vehicle/v1/telemetry", TOPIC, id="plain"),
        pytest.param(
            "fleet/fa/vehicle/v1/telemetry/json", DeviceTopic("fa", "v1", Payload.JSON), id="json"
        ),
        pytest.param(
            "fleet/fa/vehicle/v1/telemetry/batch",
            DeviceTopic("fa", "v1", Payload.BATCH),
            id="batch",
        ),
        pytest.param("fleet/fa/vehicle/v1/telemetry/xml", None, id="unknown-suffix"),
        pytest.param("fleet/fa/vehicle/v1/rejections", None, id="not-telemetry"),
        pytest.param("fleet//vehicle/v1/telemetry", None, id="empty-fleet"),
        pytest.param("telemetry/v1", None, id="other-layout"),
    ],
)
def test_topics_are_parsed_by_the_layout(topic: str, expected: DeviceTopic | None) -> None:
    assert parse_topic(topic) == expected


def test_the_topic_a_device_publishes_to_parses_back() -> None:
    assert parse_topic(telemetry_topic("fa", "v1", Payload.JSON)) == DeviceTopic(
        "fa", "v1", Payload.JSON
    )


@pytest.mark.parametrize(
    ("content_type", "kind"),
    [
        pytest.param(None, (Payload.TELEMETRY, False), id="none-topic-decides"),
        pytest.param("application/json", (Payload.JSON, False), id="json"),
        pytest.param("application/x-ndjson", (Payload.JSON, True), id="ndjson"),
        pytest.param(
            "application/x-protobuf; messageType=fleetpipe.v1.TelemetryBatch",
            (Payload.BATCH, False),
            id="batch",
        ),
        pytest.param("application/x-protobuf", (Payload.TELEMETRY, False), id="protobuf"),
    ],
)
def test_the_content_type_property_names_the_payload(
    content_type: str | None, kind: tuple[Payload, bool]
) -> None:
    assert payload_kind(TOPIC, content_type) == kind


def test_an_unknown_content_type_is_a_payload_error() -> None:
    with pytest.raises(PayloadError, match="neither JSON nor protobuf"):
        payload_kind(TOPIC, "text/csv")


def test_a_device_s_own_protobuf_bytes_are_framed_as_a_batch_unchanged() -> None:
    event = telemetry_pb2.Telemetry(vehicle_id="v1", seq=3)
    parsed = decode(event.SerializeToString(), TOPIC)
    batch = ingest_pb2.TelemetryBatch.FromString(parsed.raw)
    assert list(batch.events) == [event]
    assert parsed.positions == [0] and not parsed.problems


def test_events_naming_no_vehicle_get_the_topic_s_and_others_are_rejected() -> None:
    body = b'[{"seq": 1}, {"vehicle_id": "v2", "seq": 2}, {"vehicleId": "v1", "fleetId": "fb"}]'
    parsed = decode(body, DeviceTopic("fa", "v1", Payload.JSON))
    batch = ingest_pb2.TelemetryBatch.FromString(parsed.raw)
    assert [(e.vehicle_id, e.seq) for e in batch.events] == [("v1", 1)]
    assert [(p.index, p.field) for p in parsed.problems] == [(1, "vehicle_id"), (2, "fleet_id")]
    assert set(parsed.payloads) == {1, 2}


def test_a_payload_that_is_not_protobuf_is_a_payload_error() -> None:
    with pytest.raises(PayloadError, match="not a protobuf Telemetry"):
        decode(b"\xff\xff\xff", TOPIC)


def test_the_ack_speaks_of_the_payload_s_positions() -> None:
    parsed = decode(b'[{"vehicle_id": "v9"}, {"seq": 5}]', DeviceTopic("fa", "v1", Payload.JSON))
    batch_ack = ingest_pb2.PublishAck(accepted=0)
    batch_ack.rejected.add(index=0, field="location", reason="location is required")
    ack = parsed.ack(batch_ack)
    assert [(r.index, r.field) for r in ack.rejected] == [(0, "vehicle_id"), (1, "location")]


def _mosquitto_check(line: str, password: str) -> bool:
    """Verify a password-file line the way Mosquitto does for ``$7$`` hashes."""
    _, hashed = line.split(":", 1)
    _, kind, iterations, salt, digest = hashed.split("$")
    assert kind == "7"
    again = hashlib.pbkdf2_hmac(
        "sha512", password.encode(), base64.b64decode(salt), int(iterations), 64
    )
    return again == base64.b64decode(digest)


def test_each_device_may_write_only_its_own_topic_and_read_only_its_rejections() -> None:
    vehicles = [Vehicle("v1", "fa"), Vehicle("v2", "fa"), Vehicle("w1", "fb"), Vehicle("x:1", "fa")]
    auth = broker_auth(vehicles, {"t" * 20: "fa"}, bridge_password="b" * 20)
    lines = dict(line.split(":", 1) for line in auth.password_file.splitlines())
    assert set(lines) == {BRIDGE_USER, "gateway/fa", "v1", "v2"}
    assert _mosquitto_check(f"v1:{lines['v1']}", device_password("t" * 20, "v1"))
    assert not _mosquitto_check(f"v1:{lines['v1']}", device_password("t" * 20, "v2"))
    assert "t" * 20 not in auth.password_file
    blocks = {b.splitlines()[0]: b.splitlines()[1:] for b in auth.acl_file.split("\n\n") if b}
    assert blocks["user v1"] == [
        "topic write fleet/fa/vehicle/v1/telemetry",
        "topic write fleet/fa/vehicle/v1/telemetry/+",
        "topic read fleet/fa/vehicle/v1/rejections",
    ]
    assert auth.skipped.keys() == {"w1", "x:1"}
    assert blocks["user gateway/fa"] == [
        "topic write fleet/fa/vehicle/+/telemetry",
        "topic write fleet/fa/vehicle/+/telemetry/+",
        "topic read fleet/fa/vehicle/+/rejections",
    ]
    assert _mosquitto_check(f"x:{lines['gateway/fa']}", gateway_password("t" * 20, "fa"))


def test_a_fleet_id_that_cannot_be_a_topic_level_is_refused() -> None:
    with pytest.raises(CredentialsError, match="topic level"):
        broker_auth([], {"t" * 20: "f/+"}, bridge_password="b" * 20)
