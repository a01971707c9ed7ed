"""Per-event validation: every rule, the first failing field named, pure and table-tested."""

from __future__ import annotations

import math

import pytest

from fleetpipe.ingest.validation import VehicleIdCheck, Verdict, validate_batch
from fleetpipe.pb.v1 import ingest_pb2, telemetry_pb2
from support.builders import changed

pytestmark = pytest.mark.unit

NOW = 1_800_000_000_000_000
MINUTE = 60_000_000


VALID = telemetry_pb2.Telemetry(
    vehicle_id="fleet-a-veh-000001",
    fleet_id="fleet-a",
    seq=7,
    event_time_us=NOW - 1_000_000,
    location=telemetry_pb2.Location(lat=52.37, lon=4.89),
    motion=telemetry_pb2.Motion(speed_kmh=42.0),
    engine=telemetry_pb2.Engine(fuel_pct=55.0),
    battery=telemetry_pb2.Battery(pct=90.0),
)


def event(**changes: object) -> telemetry_pb2.Telemetry:
    return changed(VALID, changes)


def check(*events: telemetry_pb2.Telemetry, fleet: str = "fleet-a") -> Verdict:
    return validate_batch(
        events,
        fleet_id=fleet,
        now_us=NOW,
        max_future_us=5 * MINUTE,
        late_after_us=5 * MINUTE,
        ids=VehicleIdCheck(),
    )


M, R, F, X = (
    ingest_pb2.REJECT_CODE_MISSING_FIELD,
    ingest_pb2.REJECT_CODE_OUT_OF_RANGE,
    ingest_pb2.REJECT_CODE_FUTURE_EVENT,
    ingest_pb2.REJECT_CODE_MALFORMED,
)

# (changes to a valid event, reject code, field) — also used by the integration test.
INVALID = [
    pytest.param({"vehicle_id": ""}, M, "vehicle_id", id="no-vehicle-id"),
    pytest.param({"vehicle_id": "veh 1"}, X, "vehicle_id", id="space-in-vehicle-id"),
    pytest.param({"vehicle_id": "-veh"}, X, "vehicle_id", id="vehicle-id-starts-badly"),
    pytest.param({"vehicle_id": "v" * 65}, X, "vehicle_id", id="vehicle-id-too-long"),
    pytest.param({"seq": 0}, M, "seq", id="seq-zero"),
    pytest.param({"event_time_us": 0}, M, "event_time_us", id="no-event-time"),
    pytest.param({"event_time_us": -5}, M, "event_time_us", id="negative-event-time"),
    pytest.param({"event_time_us": NOW + 6 * MINUTE}, F, "event_time_us", id="future"),
    pytest.param({"location": None}, M, "location", id="no-location"),
    pytest.param({"location__lat": 90.5}, R, "location.lat", id="lat-too-big"),
    pytest.param({"location__lat": -91.0}, R, "location.lat", id="lat-too-small"),
    pytest.param({"location__lat": math.nan}, R, "location.lat", id="lat-nan"),
    pytest.param({"location__lon": 180.01}, R, "location.lon", id="lon-too-big"),
    pytest.param({"location__lon": -math.inf}, R, "location.lon", id="lon-infinite"),
    pytest.param({"motion__speed_kmh": -0.5}, R, "motion.speed_kmh", id="speed-negative"),
    pytest.param({"motion__speed_kmh": 401.0}, R, "motion.speed_kmh", id="speed-too-big"),
    pytest.param({"motion__speed_kmh": math.nan}, R, "motion.speed_kmh", id="speed-nan"),
    pytest.param({"engine__fuel_pct": 100.5}, R, "engine.fuel_pct", id="fuel-too-big"),
    pytest.param({"engine__fuel_pct": -1.0}, R, "engine.fuel_pct", id="fuel-negative"),
    pytest.param({"battery__pct": 101.0}, R, "battery.pct", id="battery-too-big"),
    pytest.param({"battery__pct": -0.1}, R, "battery.pct", id="battery-negative"),
]


@pytest.mark.parametrize(("changes", "code", "field"), INVALID)
def test_an_invalid_event_is_rejected_naming_its_field(
    changes: dict[str, object], code: int, field: str
) -> None:
    verdict = check(event(), event(**changes), event(seq=8))
    assert verdict.accepted == [0, 2]
    assert [(r.index, r.code, r.field) for r in verdict.rejected] == [(1, code, field)]
    assert verdict.rejected[0].reason
    assert verdict.foreign_fleet is None


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({}, id="typical"),
        pytest.param({"location__lat": -90.0, "location__lon": 180.0}, id="edges"),
        pytest.param({"location__lat": 0.0, "location__lon": 0.0}, id="null-island-with-fix"),
        pytest.param({"motion": None, "engine": None, "battery": None}, id="only-location"),
        pytest.param({"vehicle_id": "A.b_c:d-1"}, id="punctuated-id"),
        pytest.param({"event_time_us": NOW + 5 * MINUTE}, id="at-the-future-limit"),
        pytest.param({"fleet_id": ""}, id="no-fleet-given"),
    ],
)
def test_a_valid_event_is_accepted(changes: dict[str, object]) -> None:
    verdict = check(event(**changes))
    assert (verdict.accepted, verdict.rejected, verdict.late) == ([0], [], [])


def test_an_old_event_is_accepted_and_flagged_late() -> None:
    verdict = check(event(event_time_us=NOW - 6 * MINUTE), event())
    assert verdict.accepted == [0, 1]
    assert verdict.late == [0]


def test_an_event_of_another_fleet_marks_the_whole_batch() -> None:
    verdict = check(event(), event(fleet_id="fleet-b"))
    assert verdict.foreign_fleet == "fleet-b"


def test_the_reject_code_has_a_short_name_for_metrics() -> None:
    verdict = check(event(seq=0))
    assert verdict.rejected[0].code_name == "missing_field"


def test_vehicle_id_check_remembers_good_ids_within_a_bound() -> None:
    ids = VehicleIdCheck(max_size=2)
    assert ids.ok("a") and ids.ok("b") and not ids.ok("bad id")
    assert ids.ok("c")  # the memory was full: cleared and refilled, still correct
    assert ids.ok("a")


def test_accepted_events_without_a_fleet_are_listed_for_filling_in() -> None:
    verdict = check(event(fleet_id=""), event(fleet_id="", seq=0), event())
    assert verdict.accepted == [0, 2]
    assert verdict.no_fleet == [0]  # the rejected one is not filled in
    assert verdict.keys == ["fleet-a-veh-000001", "fleet-a-veh-000001"]
