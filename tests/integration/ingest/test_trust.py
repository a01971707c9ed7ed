"""What a faulty device or a wrong setting meets at the real ingest: refusals said plainly."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
import uuid
from typing import cast

import grpc
import pytest

from fleetpipe.core.kafka import Admin
from fleetpipe.core.settings import KafkaSettings, Topics
from fleetpipe.core.topics import topic_specs
from fleetpipe.pb.v1 import deadletter_pb2, ingest_pb2, telemetry_pb2
from fleetpipe_dev.testing import read_all, read_events, wait_for
from fleetpipe_loadtest.fleet import Fleet
from support.ingest import Ingest, StartIngest
from support.messages import value_of

pytestmark = pytest.mark.integration


def _events(n: int) -> list[telemetry_pb2.Telemetry]:
    now_us = time.time_ns() // 1000
    [tick] = Fleet(n, seed=5, fleet_id="fleet-a", start_time_us=now_us - 1_000_000).run(1)
    return list(tick.messages())


def test_impossible_values_are_refused_by_field_and_partial_readings_kept_without_them(
    ingest: Ingest, kafka_settings: KafkaSettings
) -> None:
    in_1970, crash_to_infinity, no_voltage, fine = _events(4)
    in_1970.event_time_us = 5_000_000
    crash_to_infinity.motion.accel_x_ms2 = -math.inf
    no_voltage.battery.voltage = math.nan
    ack = ingest.stub().Publish(
        ingest_pb2.TelemetryBatch(
            batch_id=1, events=[in_1970, crash_to_infinity, no_voltage, fine]
        ),
        metadata=ingest.auth(),
    )
    assert {r.index: r.field for r in ack.rejected} == {0: "event_time_us", 1: "motion.accel_x_ms2"}
    assert "maximum lateness" in ack.rejected[0].reason
    assert ack.accepted == 2

    stored = {
        e.vehicle_id: e
        for e in (
            telemetry_pb2.Telemetry.FromString(value_of(m))
            for m in read_events(kafka_settings, ingest.topics.raw)
        )
    }
    assert sorted(stored) == sorted([no_voltage.vehicle_id, fine.vehicle_id])
    kept = stored[no_voltage.vehicle_id]
    assert (list(kept.dropped_fields), kept.battery.voltage) == (["battery.voltage"], 0.0)
    assert kept.battery.pct == no_voltage.battery.pct and kept.ingest_time_us > 0
    assert list(stored[fine.vehicle_id].dropped_fields) == []
    letters = [
        deadletter_pb2.DeadLetter.FromString(value_of(m))
        for m in read_all(kafka_settings, ingest.topics.deadletter)
    ]
    assert sorted(letter.error.split(":")[0] for letter in letters) == [
        "event_time_us",
        "motion.accel_x_ms2",
    ]


def test_a_too_short_token_ends_in_one_line_naming_the_setting() -> None:
    env = {
        **os.environ,
        "FLEET_AUTH__TOKENS": json.dumps({"tiny-secret": "fleet-a"}),
        "FLEET_OBSERVABILITY__HTTP_PORT": "0",
    }
    done = subprocess.run(
        [sys.executable, "-m", "fleetpipe.ingest"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert len(lines) == 1, lines
    assert "FLEET_AUTH__TOKENS" in lines[0] and "at least 16 characters" in lines[0]
    assert "tiny-secret" not in lines[0]


def test_an_ingest_whose_raw_topic_is_missing_stays_not_ready_and_names_it(
    start_ingest: StartIngest, kafka_settings: KafkaSettings
) -> None:
    topics = Topics.with_suffix(uuid.uuid4().hex[:10])
    admin = Admin(kafka_settings)
    admin.ensure_topics([s for s in topic_specs(topics, 1) if s.name == topics.deadletter])
    ingest = start_ingest(topics, wait_ready=False)

    # Until its first look at the topics, ingest is not ready without saying why yet.
    def said_why() -> tuple[int, str] | None:
        got = ingest.process.get("/readyz")
        return got if "topic" in got[1] else None

    code, body = wait_for(said_why, timeout=30, what="ingest to say why it is not ready")
    assert code == 503 and topics.raw in body and "FLEET_TOPICS__RAW" in body
    assert f"not ready: topic {topics.raw!r}" in ingest.process.log()
    with pytest.raises(grpc.RpcError) as refused:
        ingest.stub().Publish(
            ingest_pb2.TelemetryBatch(batch_id=1, events=_events(1)), metadata=ingest.auth()
        )
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert topics.raw in (refused.value.details() or "")

    admin.ensure_topics([s for s in topic_specs(topics, 1) if s.name == topics.raw])
    wait_for(ingest.process.ready, timeout=30, what="ingest to be ready once the topic exists")
    ack = ingest.stub().Publish(
        ingest_pb2.TelemetryBatch(batch_id=2, events=_events(1)), metadata=ingest.auth()
    )
    assert ack.accepted == 1


def test_an_undeclared_object_class_refuses_its_event_by_field_and_value(
    ingest: Ingest, kafka_settings: KafkaSettings
) -> None:
    undeclared, declared = _events(2)
    # proto3 carries any number in an enum field: 9 parses, and no release declares it.
    undeclared.perception.nearest_object_class = cast(telemetry_pb2.ObjectClass, 9)
    undeclared.perception.nearest_object_distance_m = 12.0
    declared.perception.nearest_object_class = telemetry_pb2.OBJECT_CLASS_PEDESTRIAN
    declared.perception.nearest_object_distance_m = 12.0
    ack = ingest.stub().Publish(
        ingest_pb2.TelemetryBatch(batch_id=1, events=[undeclared, declared]),
        metadata=ingest.auth(),
    )
    assert [(r.index, r.code, r.field) for r in ack.rejected] == [
        (0, ingest_pb2.REJECT_CODE_OUT_OF_RANGE, "perception.nearest_object_class")
    ]
    assert ack.rejected[0].reason == (
        "perception.nearest_object_class 9 is not a declared ObjectClass (0..4)"
    )
    assert ack.accepted == 1

    [stored] = [
        telemetry_pb2.Telemetry.FromString(value_of(m))
        for m in read_events(kafka_settings, ingest.topics.raw)
    ]
    assert stored.vehicle_id == declared.vehicle_id
    assert stored.perception.nearest_object_class == telemetry_pb2.OBJECT_CLASS_PEDESTRIAN
    assert list(stored.dropped_fields) == []
    [letter] = [
        deadletter_pb2.DeadLetter.FromString(value_of(m))
        for m in read_all(kafka_settings, ingest.topics.deadletter)
    ]
    assert letter.error.startswith("perception.nearest_object_class: "), letter.error
    assert "9 is not a declared ObjectClass" in letter.error
    assert telemetry_pb2.Telemetry.FromString(letter.payload).vehicle_id == undeclared.vehicle_id
