"""The MQTT bridge on the real broker (Mosquitto) and Kafka: QoS 1 in, the raw topic out,
per-device ACLs, dead letters with reasons and answers on the device's rejections topic."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from google.protobuf import json_format

from fleetpipe.core.settings import KafkaSettings, RuntimeSettings, Topics
from fleetpipe.ingest.mqtt.credentials import gateway_password, gateway_user
from fleetpipe.ingest.mqtt.topics import Payload, rejections_topic, telemetry_topic
from fleetpipe.pb.v1 import deadletter_pb2, ingest_pb2, telemetry_pb2
from fleetpipe.registry import Vehicle, write_csv
from fleetpipe_dev.testing import read_all, read_events, wait_for
from fleetpipe_loadtest.fleet import Fleet
from fleetpipe_loadtest.records import now_us
from support.builders import changed
from support.messages import decoded, headers_of
from support.mqtt import Device, DeviceFleet, StartBridge

pytestmark = pytest.mark.integration


def events_of(fleet: DeviceFleet, ticks: int) -> list[list[telemetry_pb2.Telemetry]]:
    """``ticks`` lists of the fleet's events, the clock ending about now."""
    sim = Fleet(
        len(fleet.vehicles),
        seed=5,
        fleet_id=fleet.fleet_id,
        start_time_us=now_us() - ticks * 1_000_000,
    )
    return [t.messages() for t in sim.run(ticks)]


def raw_events(kafka: KafkaSettings, topics: Topics, n: int) -> list[telemetry_pb2.Telemetry]:
    def enough() -> list[telemetry_pb2.Telemetry] | None:
        got = [
            decoded(m, telemetry_pb2.Telemetry) for m in read_events(kafka, topics.raw, idle_s=0.5)
        ]
        return got if len(got) >= n else None

    return wait_for(enough, timeout=60, what=f"{n} events on the raw topic")


def test_a_wrong_password_is_refused_at_connect(device_fleet: DeviceFleet) -> None:
    vid = device_fleet.vehicles[0].vehicle_id
    device = device_fleet.device(vid, password="not-the-password")
    try:
        assert str(device.connect()) == "Not authorized"
    finally:
        device.close()
    right = device_fleet.device(vid)
    try:
        assert not right.connect().is_failure
    finally:
        right.close()


def test_qos1_events_in_protobuf_json_and_batches_reach_the_raw_topic_as_sent(
    device_fleet: DeviceFleet,
    start_bridge: StartBridge,
    topics: Topics,
    kafka_settings: KafkaSettings,
) -> None:
    bridge = start_bridge(topics)
    young = RuntimeSettings().gc_threshold
    assert f"garbage collector: young threshold {young}" in bridge.log(), "core.runtime applied"
    ticks = events_of(device_fleet, 3)
    fid = device_fleet.fleet_id
    sent: dict[tuple[str, int], telemetry_pb2.Telemetry] = {}
    devices = {v.vehicle_id: device_fleet.device(v.vehicle_id) for v in device_fleet.vehicles}
    try:
        for d in devices.values():
            assert not d.connect().is_failure
        before = now_us()
        for n, tick in enumerate(ticks):
            for e in tick:
                d = devices[e.vehicle_id]
                if n == 0:  # one protobuf Telemetry per message, no suffix
                    rc = d.publish(telemetry_topic(fid, e.vehicle_id), e.SerializeToString())
                elif n == 1:  # JSON, named by the MQTT 5 content type
                    body = json_format.MessageToJson(e).encode()
                    rc = d.publish(
                        telemetry_topic(fid, e.vehicle_id), body, content_type="application/json"
                    )
                else:  # a protobuf TelemetryBatch, named by the topic's suffix
                    body = ingest_pb2.TelemetryBatch(events=[e]).SerializeToString()
                    rc = d.publish(telemetry_topic(fid, e.vehicle_id, Payload.BATCH), body)
                assert not rc.is_failure, str(rc)
                sent[(e.vehicle_id, e.seq)] = e
    finally:
        for d in devices.values():
            d.close()
    got = raw_events(kafka_settings, topics, len(sent))
    after = now_us()
    assert len(got) == len(sent) == 9
    for e in got:
        assert before <= e.ingest_time_us <= after
        assert e == changed(sent[(e.vehicle_id, e.seq)], {"ingest_time_us": e.ingest_time_us})


def test_a_device_publishing_to_another_vehicles_topic_gets_nothing_through(
    device_fleet: DeviceFleet,
    start_bridge: StartBridge,
    topics: Topics,
    kafka_settings: KafkaSettings,
) -> None:
    start_bridge(topics)
    (first, second, _) = device_fleet.vehicles
    fid = device_fleet.fleet_id
    tick = {e.vehicle_id: e for e in events_of(device_fleet, 1)[0]}
    mine, theirs = tick[first.vehicle_id], tick[second.vehicle_id]
    device = device_fleet.device(first.vehicle_id)
    try:
        assert not device.connect().is_failure
        # Another vehicle's topic: the broker's ACL refuses it (MQTT 5 tells the device so).
        rc = device.publish(telemetry_topic(fid, second.vehicle_id), theirs.SerializeToString())
        assert str(rc) == "Not authorized"
        # Its own topic, but an event naming the other vehicle: the bridge rejects it.
        rc = device.publish(telemetry_topic(fid, first.vehicle_id), theirs.SerializeToString())
        assert not rc.is_failure
        # Another fleet's topic for the same vehicle id: refused by the ACL too.
        other_fleet = telemetry_topic("someone-else", first.vehicle_id)
        assert str(device.publish(other_fleet, mine.SerializeToString())) == "Not authorized"
        # Then one event of its own, which does get through.
        assert not device.publish(
            telemetry_topic(fid, first.vehicle_id), mine.SerializeToString()
        ).is_failure
    finally:
        device.close()
    got = raw_events(kafka_settings, topics, 1)
    assert [(e.vehicle_id, e.seq) for e in got] == [(mine.vehicle_id, mine.seq)]
    letters = wait_for(
        lambda: read_all(kafka_settings, topics.deadletter, idle_s=0.5),
        timeout=30,
        what="the dead letter",
    )
    assert len(letters) == 1
    letter = decoded(letters[0], deadletter_pb2.DeadLetter)
    assert letter.service == "mqtt-bridge"
    assert "is not this topic's vehicle" in letter.error
    assert telemetry_pb2.Telemetry.FromString(letter.payload).vehicle_id == second.vehicle_id


def test_bad_payloads_are_dead_lettered_with_the_reason_and_answered_while_good_ones_pass(
    device_fleet: DeviceFleet,
    start_bridge: StartBridge,
    topics: Topics,
    kafka_settings: KafkaSettings,
) -> None:
    start_bridge(topics)
    vid = device_fleet.vehicles[0].vehicle_id
    fid = device_fleet.fleet_id
    own = telemetry_topic(fid, vid)
    good = [e for tick in events_of(device_fleet, 3) for e in tick if e.vehicle_id == vid]
    bad_lat = changed(good[1], {"location__lat": 91.0})
    device = device_fleet.device(vid)
    try:
        assert not device.connect().is_failure
        device.subscribe_rejections(fid, vid)
        assert not device.publish(own, good[0].SerializeToString()).is_failure
        assert not device.publish(own, b"\xff\xfe not protobuf").is_failure
        assert not device.publish(f"{own}/json", b"{not json").is_failure
        # A batch of two: one out of range, one good; JSON so the answer comes as JSON.
        body = json.dumps(
            [json_format.MessageToDict(bad_lat), json_format.MessageToDict(good[2])]
        ).encode()
        assert not device.publish(f"{own}/json", body).is_failure
        answers = wait_for(
            lambda: device.received if len(device.received) >= 3 else None,
            timeout=30,
            what="three answers on the rejections topic",
        )
    finally:
        device.close()
    assert {topic for topic, _, _ in answers} == {rejections_topic(fid, vid)}
    protobuf_answer = ingest_pb2.PublishAck.FromString(answers[0][1])
    assert "malformed_payload" in protobuf_answer.rejected[0].reason
    assert answers[0][2] is not None and "PublishAck" in answers[0][2]
    assert "not JSON" in json.loads(answers[1][1])["rejected"][0]["reason"]
    last = json.loads(answers[2][1])
    assert last["accepted"] == 1
    assert [(r["index"], r["field"]) for r in last["rejected"]] == [(0, "location.lat")]

    got = raw_events(kafka_settings, topics, 2)
    assert sorted(e.seq for e in got) == sorted([good[0].seq, good[2].seq])
    letters = read_all(kafka_settings, topics.deadletter, idle_s=0.5)
    reasons = sorted(headers_of(m)["fp-reason"].decode() for m in letters)
    assert reasons == ["invalid_event", "malformed_payload", "malformed_payload"]
    errors = [decoded(m, deadletter_pb2.DeadLetter).error for m in letters]
    assert any("location.lat" in e for e in errors)


def test_a_gateway_cannot_pass_off_another_fleets_vehicle_as_its_own(
    device_fleet: DeviceFleet,
    start_bridge: StartBridge,
    topics: Topics,
    kafka_settings: KafkaSettings,
    tmp_path: Path,
) -> None:
    """The gateway account may write any vehicle's topic under its own fleet, so the bridge
    checks the registry's owner of each vehicle, as ingest does."""
    fid = device_fleet.fleet_id
    mine = device_fleet.vehicles[0]
    registry = tmp_path / "vehicles.csv"
    write_csv([*device_fleet.vehicles, Vehicle("someone-elses-1", "other-fleet")], registry)
    start_bridge(topics, FLEET_REGISTRY_PATH=str(registry))
    own = events_of(device_fleet, 1)[0][0]
    theirs = changed(own, {"vehicle_id": "someone-elses-1", "fleet_id": ""})
    gateway = Device(
        device_fleet.broker.port,
        gateway_user(fid),
        gateway_password(device_fleet.token, fid),
    )
    try:
        assert not gateway.connect().is_failure
        foreign = telemetry_topic(fid, "someone-elses-1")
        assert not gateway.publish(foreign, theirs.SerializeToString()).is_failure  # the ACL's
        assert not gateway.publish(
            telemetry_topic(fid, mine.vehicle_id), own.SerializeToString()
        ).is_failure
    finally:
        gateway.close()
    got = raw_events(kafka_settings, topics, 1)
    assert [e.vehicle_id for e in got] == [mine.vehicle_id]
    letters = wait_for(
        lambda: read_all(kafka_settings, topics.deadletter, idle_s=0.5),
        timeout=30,
        what="the dead letter",
    )
    assert len(letters) == 1
    assert (
        "is not a registered vehicle of fleet"
        in decoded(letters[0], deadletter_pb2.DeadLetter).error
    )
