"""The detector over scripted timelines: episodes, duplicates, offline, restarts, ownership."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from fleetpipe.core.keygroups import KeyGroups
from fleetpipe.detection.batch import COLUMNAR_FROM
from fleetpipe.detection.config import Rules
from fleetpipe.detection.engine import Detector, Outputs
from fleetpipe.detection.episodes import alert_id
from fleetpipe.detection.ownership import Ownership
from fleetpipe.detection.state import VehicleState
from fleetpipe.detection.wire import encode_state
from fleetpipe.pb.v1 import alert_pb2, enriched_pb2, trip_pb2
from fleetpipe_dev.drills import SCENARIOS, T0_US, Timeline, drill_fleet
from fleetpipe_dev.drills import cruise as _cruise

pytestmark = pytest.mark.unit

Events = list[enriched_pb2.EnrichedTelemetry]
MIN = 60_000_000
NOW = T0_US + 10 * 60 * MIN  # processing time: well after the scripted event times


def _alerts(out: Outputs) -> list[alert_pb2.Alert]:
    return [alert_pb2.Alert.FromString(v) for _, v in out.alerts]


def _said(alerts: list[alert_pb2.Alert]) -> list[tuple[str, str]]:
    return [(a.rule, alert_pb2.AlertState.Name(a.state)[12:]) for a in alerts]


def _run(detector: Detector, events: Events, *, partition: int = 0, now_us: int = NOW) -> Outputs:
    return detector.process([(e, partition) for e in events], now_us=now_us)


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_each_scenario_gives_one_open_and_one_resolved_of_its_rule(scenario: str) -> None:
    tl = Timeline("v-1")
    events = _cruise(tl) + SCENARIOS[scenario](tl) + _cruise(tl)
    alerts = _alerts(_run(Detector(Rules()), events))
    expected = [] if scenario == "normal driving" else [(scenario, "OPEN"), (scenario, "RESOLVED")]
    assert _said(alerts) == expected
    if alerts:
        opened, resolved = alerts
        assert opened.alert_id == resolved.alert_id
        assert opened.episode_start_us == resolved.episode_start_us
        assert resolved.episode_end_us > resolved.episode_start_us
        assert opened.vehicle_id == "v-1" and opened.driver_id == "drv-v-1"
        assert opened.geohash6 and opened.location.lat
        assert opened.message.startswith("v-1: ")


def test_alert_carries_severity_values_and_the_triggering_event() -> None:
    tl = Timeline("v-1")
    events = _cruise(tl, 5) + tl.emit(3, sos=True) + tl.emit(12, sos=False)
    opened, resolved = _alerts(_run(Detector(Rules()), events))
    assert opened.severity == alert_pb2.SEVERITY_CRITICAL
    trigger = events[5].telemetry
    assert (opened.seq, opened.event_time_us, opened.ingest_time_us) == (
        trigger.seq,
        trigger.event_time_us,
        trigger.ingest_time_us,
    )
    assert opened.detected_time_us == NOW
    assert resolved.episode_end_us == events[8].telemetry.event_time_us
    assert resolved.values["duration_s"] == 3.0
    assert opened.alert_id == alert_id("v-1", "sos", trigger.event_time_us)


def test_duplicates_and_stragglers_never_flip_an_episode() -> None:
    tl = Timeline("v-1")
    events = _cruise(tl, 20) + tl.emit(30, speed=95.0) + _cruise(tl, 30)
    detector = Detector(Rules())
    said = []
    rng = random.Random(3)
    for i in range(0, len(events), 10):
        batch = events[i : i + 10]
        # Replay older events (some from long ago, before the episode) in every batch.
        replayed = rng.sample(events[: i + 10], min(len(events[: i + 10]), 15))
        out = _run(detector, replayed + batch)
        said += _said(_alerts(out))
    assert said == [("speeding", "OPEN"), ("speeding", "RESOLVED")]


def test_duplicates_are_counted() -> None:
    tl = Timeline("v-1")
    events = _cruise(tl, 10)
    detector = Detector(Rules())
    _run(detector, events)
    assert _run(detector, events[3:6]).duplicates == 3


def _decoded(out: Outputs) -> tuple[list[bytes], list[bytes], list[bytes]]:
    """Outputs without their processing-time stamps, for comparing runs."""
    alerts = []
    for a in _alerts(out):
        a.detected_time_us = 0
        alerts.append(a.SerializeToString(deterministic=True))
    trips = [v for _, v in out.trips]
    scores = []
    for _, v in out.scores:
        s = trip_pb2.DriverScore.FromString(v)
        s.computed_time_us = 0
        scores.append(s.SerializeToString(deterministic=True))
    return alerts, trips, scores


def test_state_restored_from_the_changelog_continues_exactly() -> None:
    events = drill_fleet(6, episodes=6, seed=11)
    whole = _decoded(_run(Detector(Rules()), events))
    assert whole[0] and whole[1] and whole[2], "the drill produces alerts, trips and scores"

    pieces: tuple[list[bytes], list[bytes], list[bytes]] = ([], [], [])
    changelog: dict[str, bytes] = {}
    detector = Detector(Rules())
    rng = random.Random(5)
    i = 0
    while i < len(events):
        n = rng.randint(1, 400)
        out = _run(detector, events[i : i + n])
        i += n
        for got, part in zip(pieces, _decoded(out), strict=True):
            got.extend(part)
        changelog.update(out.states)
        # A restart after every batch: a fresh detector knows only the changelog.
        detector = Detector(Rules())
        detector.ownership.assign(
            1, [0], {k: VehicleState.from_bytes(v) for k, v in changelog.items()}
        )
    assert pieces == whole


def test_only_vehicles_the_batch_changed_are_written_once_each() -> None:
    a, b = Timeline("v-a"), Timeline("v-b")
    events = _cruise(a, 5) + _cruise(b, 5) + _cruise(a, 5)
    out = _run(Detector(Rules()), events)
    assert sorted(k for k, _ in out.states) == ["v-a", "v-b"]
    assert VehicleState.from_bytes(dict(out.states)["v-a"]).last_seq == 10


def test_offline_opens_by_processing_time_and_resolves_on_the_next_event() -> None:
    tl = Timeline("v-1")
    detector = Detector(Rules())
    detector.ownership.assign(1, [0], {})
    _run(detector, _cruise(tl, 10), now_us=NOW)
    assert not _alerts(detector.tick(NOW + 9 * MIN))
    opened = _alerts(detector.tick(NOW + 11 * MIN))
    assert _said(opened) == [("offline", "OPEN")]
    assert not _alerts(detector.tick(NOW + 30 * MIN)), "announced once"
    tl.pause(3600)
    resolved = _alerts(_run(detector, _cruise(tl, 1), now_us=NOW + 61 * MIN))
    assert _said(resolved) == [("offline", "RESOLVED")]
    assert opened[0].alert_id == resolved[0].alert_id
    assert opened[0].episode_start_us == tl.t_us - 3600 * 1_000_000 - 1_000_000


def test_a_silence_in_the_data_is_announced_with_the_same_id_as_the_tick_would() -> None:
    tl = Timeline("v-1")
    before = _cruise(tl, 10)
    tl.pause(900)
    after = _cruise(tl, 5)
    alerts = _alerts(_run(Detector(Rules()), before + after))
    assert _said(alerts) == [("offline", "OPEN"), ("offline", "RESOLVED")]

    ticked = Detector(Rules())
    ticked.ownership.assign(1, [0], {})
    _run(ticked, before, now_us=NOW)
    [by_tick] = _alerts(ticked.tick(NOW + 20 * MIN))
    assert by_tick.alert_id == alerts[0].alert_id


def test_offline_survives_a_restart_through_the_state() -> None:
    tl = Timeline("v-1")
    detector = Detector(Rules())
    detector.ownership.assign(1, [0], {})
    out = _run(detector, _cruise(tl, 10), now_us=NOW)
    restarted = Detector(Rules())
    restarted.ownership.assign(1, [0], {k: VehicleState.from_bytes(v) for k, v in out.states})
    ticked = restarted.tick(NOW + 11 * MIN)
    assert _said(_alerts(ticked)) == [("offline", "OPEN")]
    again = Detector(Rules())
    again.ownership.assign(1, [0], {k: VehicleState.from_bytes(v) for k, v in ticked.states})
    assert not _alerts(again.tick(NOW + 12 * MIN)), "the open episode came back with the state"


def _home(vehicle_id: str, partitions: int) -> int:
    """Where the pipeline's key groups place a vehicle."""
    return KeyGroups().partition(vehicle_id, partitions)


def test_offline_skips_vehicles_in_transition_or_elsewhere() -> None:
    home = _home("v-1", 4)
    tl = Timeline("v-1")
    seen = Detector(Rules())
    out = _run(seen, _cruise(tl, 5), partition=(home + 1) % 4, now_us=NOW)
    state = VehicleState.from_bytes(dict(out.states)["v-1"])
    for assigned in ([home, (home + 1) % 4], [(home + 2) % 4]):
        detector = Detector(Rules())
        detector.ownership.assign(
            4, assigned, {"v-1": VehicleState.from_bytes(encode_state(state))}
        )
        assert not _alerts(detector.tick(NOW + 20 * MIN))


def test_ownership_keeps_home_and_last_partition_vehicles() -> None:
    st = VehicleState("v-1")
    st.input_partition = 1
    assert Ownership.keeps(st, home=3, assigned={3})
    assert Ownership.keeps(st, home=3, assigned={1})
    assert not Ownership.keeps(st, home=3, assigned={0, 2})


def test_records_arriving_on_a_new_partition_ask_for_a_fresh_copy() -> None:
    vid = "v-1"
    home = _home(vid, 4)
    old = (home + 1) % 4
    tl = Timeline(vid)
    first = Detector(Rules())
    out = _run(first, tl.emit(20, speed=95.0), partition=old)
    held = VehicleState.from_bytes(dict(out.states)[vid])
    detector = Detector(Rules())
    detector.ownership.assign(4, [home], {vid: held})
    assert detector.ownership.in_transition == 1
    moved = [(e, home) for e in tl.emit(3, speed=95.0)]
    ids = [e.telemetry.vehicle_id for e, _ in moved]
    assert detector.ownership.stale_arrivals(ids, [p for _, p in moved]) == {vid}
    # Meanwhile the other replica went on: the changelog's copy is newer.
    newer = _run(first, tl.emit(5, speed=95.0), partition=old)
    detector.ownership.refresh({vid}, {vid: VehicleState.from_bytes(dict(newer.states)[vid])})
    assert detector.ownership.stale_arrivals(ids, [p for _, p in moved]) == set(), "refreshed once"
    later = [(e, home) for e in tl.emit(5, speed=95.0)]
    out = detector.process(later, now_us=NOW)
    assert out.duplicates == 0 and not _alerts(out), "the open episode continues, no new OPEN"
    assert detector.ownership.in_transition == 0


def test_revoking_partitions_forgets_their_vehicles() -> None:
    states = {f"v-{i}": VehicleState(f"v-{i}") for i in range(40)}
    for vid, st in states.items():
        st.input_partition = _home(vid, 2)
    detector = Detector(Rules())
    detector.ownership.assign(2, [0, 1], states)
    detector.ownership.revoke([1])
    assert {_home(v, 2) for v in detector.states} == {0}
    detector.ownership.revoke([0])
    assert detector.states == {}


def test_revoking_the_old_partition_of_a_vehicle_in_transition_forgets_it() -> None:
    vid = "v-1"
    home = _home(vid, 4)
    old, other = (home + 1) % 4, (home + 2) % 4
    st = VehicleState(vid)
    st.input_partition = old
    detector = Detector(Rules())
    detector.ownership.assign(4, [old, other], {vid: st})
    assert detector.ownership.in_transition == 1
    detector.ownership.revoke([old])
    assert detector.states == {} and detector.ownership.in_transition == 0


def _trips(out: Outputs) -> list[trip_pb2.Trip]:
    return [trip_pb2.Trip.FromString(v) for _, v in out.trips]


def test_a_trip_starts_moving_and_ends_at_ignition_off() -> None:
    tl = Timeline("v-1", ignition=True)
    events = tl.emit(10, speed=0.0)  # warming up: no trip yet
    events += tl.emit(120, speed=60.0) + tl.emit(60, speed=0.0)  # a stop with the engine on
    events += tl.emit(60, speed=90.0) + tl.emit(3, speed=0.0, ignition=False)
    started, ended = _trips(_run(Detector(Rules()), events))
    assert started.state == trip_pb2.TRIP_STATE_STARTED
    assert ended.state == trip_pb2.TRIP_STATE_ENDED
    assert started.trip_id == ended.trip_id
    assert started.start_time_us == events[10].telemetry.event_time_us
    assert ended.end_time_us == events[-3].telemetry.event_time_us
    assert ended.distance_km == pytest.approx(120 * 60 / 3600 + 60 * 90 / 3600, rel=0.01)
    assert ended.idle_s == pytest.approx(60, abs=1)
    assert ended.max_speed_kmh == 90
    assert ended.duration_s == pytest.approx(240)
    assert ended.speeding_s == pytest.approx(60, abs=1)


def test_a_long_stop_ends_the_trip_where_it_began() -> None:
    tl = Timeline("v-1")
    events = tl.emit(60, speed=50.0) + tl.emit(700, speed=0.0)
    [_, ended] = _trips(_run(Detector(Rules()), events))
    assert ended.end_time_us == events[60].telemetry.event_time_us
    assert ended.idle_s == 0


@pytest.mark.parametrize(
    "split",
    [
        pytest.param(lambda tl: tl.pause(3600), id="silence"),
        pytest.param(lambda tl: tl.set(hint="trip-2"), id="device-trip-counter"),
    ],
)
def test_silence_or_a_new_device_trip_ends_the_trip(split: Callable[[Timeline], None]) -> None:
    tl = Timeline("v-1", hint="trip-1")
    events = tl.emit(30, speed=50.0)
    split(tl)
    events += tl.emit(30, speed=50.0)
    trips = _trips(_run(Detector(Rules()), events))
    assert [t.state for t in trips] == [
        trip_pb2.TRIP_STATE_STARTED,
        trip_pb2.TRIP_STATE_ENDED,
        trip_pb2.TRIP_STATE_STARTED,
    ]
    assert trips[1].end_time_us == events[29].telemetry.event_time_us


def test_gps_jumps_do_not_count_as_distance() -> None:
    tl = Timeline("v-1")
    events = tl.emit(30, speed=36.0)
    tl.lat += 1.0  # a 111 km jump in one second
    events += tl.emit(30, speed=36.0) + tl.emit(2, speed=0.0, ignition=False)
    [_, ended] = _trips(_run(Detector(Rules()), events))
    assert ended.distance_km == pytest.approx(59 * 0.01, rel=0.02)


def test_driver_score_over_a_rolling_window() -> None:
    rules = Rules.parse({"driver_score": {"window_s": 1200, "bucket_s": 600, "min_driving_s": 60}})
    tl = Timeline("v-1", start_us=T0_US)
    events = tl.emit(599, speed=50.0)  # bucket 1: clean driving
    events += tl.emit(300, speed=95.0) + tl.emit(300, speed=50.0)  # bucket 2: half speeding
    events += tl.emit(1, speed=50.0)  # opens bucket 3: scores the window of buckets 1–2
    scores = [trip_pb2.DriverScore.FromString(v) for _, v in _run(Detector(rules), events).scores]
    assert [s.window_end_us for s in scores] == [T0_US + 600 * 1_000_000, T0_US + 1200 * 1_000_000]
    first, second = scores
    assert first.score == pytest.approx(100)
    assert second.driving_s == pytest.approx(1198)  # the very first event has no interval
    assert second.speeding_s == pytest.approx(300, abs=1)
    assert second.score == pytest.approx(100 - 50 * 300 / 1198, abs=0.2)
    assert second.driver_id == "drv-v-1"


def test_geofence_exit_and_return() -> None:
    rules = Rules.parse(
        {
            "geofence": {
                "fences": [
                    {
                        "name": "depot",
                        "kind": "keep_in",
                        "polygon": [[52.0, 4.0], [52.0, 4.95], [52.6, 4.95], [52.6, 4.0]],
                    }
                ]
            }
        }
    )
    tl = Timeline("v-1", lon=4.90, heading_deg=90.0)
    out_and_back = tl.emit(400, speed=72.0)  # 20 m/s east: leaves the fence at lon 4.95
    tl.heading = 270.0
    out_and_back += tl.emit(400, speed=72.0)
    alerts = _alerts(_run(Detector(rules), out_and_back))
    assert _said(alerts) == [("geofence_exit", "OPEN"), ("geofence_exit", "RESOLVED")]
    assert alerts[0].message == "v-1: left geofence depot"


@pytest.mark.parametrize("scenario", [s for s in SCENARIOS if s != "normal driving"])
def test_each_alert_names_the_event_that_triggered_it(scenario: str) -> None:
    tl = Timeline("v-1")
    events = _cruise(tl) + SCENARIOS[scenario](tl) + _cruise(tl)
    out = _run(Detector(Rules()), events)
    assert len(out.alert_sources) == len(out.alerts)
    for source, alert in zip(out.alert_sources, _alerts(out), strict=True):
        assert events[source].telemetry.seq == alert.seq


def _wire_run(detector: Detector, events: Events, batch: int) -> list[Outputs]:
    outs = []
    for k in range(0, len(events), batch):
        chunk = events[k : k + batch]
        decoded = detector.decode([e.SerializeToString() for e in chunk])
        outs.append(detector.process_batch(decoded, [0] * len(chunk), now_us=NOW))
    return outs


def _message_run(detector: Detector, events: Events, batch: int) -> list[Outputs]:
    return [_run(detector, events[k : k + batch]) for k in range(0, len(events), batch)]


@pytest.mark.parametrize("batch", [7, 37, COLUMNAR_FROM, 500])
def test_serialized_batches_give_what_decoded_messages_give(batch: int) -> None:
    """The service decodes whole batches into columns (ptars); tests mostly feed messages:
    both must come to the same alerts, trips, scores and state, byte for byte."""
    rules = Rules.parse(
        {
            "geofence": {
                "fences": [
                    {
                        "name": "north",
                        "kind": "keep_out",
                        "polygon": [[52.05, 4.0], [52.05, 5.5], [53.0, 5.5], [53.0, 4.0]],
                        "fleets": ["fleet-1"],
                    }
                ]
            }
        }
    )
    events = drill_fleet(60, episodes=3, seed=7)
    # Sub-messages absent (the runtime reads their defaults) and a vehicle without a registry
    # entry: the columnar decoder must read them the same way.
    bare = Timeline("v-bare")
    for e in bare.emit(40, speed=30.0):
        e.telemetry.ClearField("engine")
        e.telemetry.ClearField("battery")
        e.ClearField("vehicle")
        events.append(e)
    by_wire = _wire_run(Detector(rules), events, batch)
    by_message = _message_run(Detector(rules), events, batch)
    assert sum(len(o.alerts) for o in by_wire) > 20, "the drill raises alerts"
    for wire, message in zip(by_wire, by_message, strict=True):
        assert wire.alerts == message.alerts
        assert wire.trips == message.trips
        assert wire.scores == message.scores
        assert wire.states == message.states
        assert wire.alert_sources == message.alert_sources
        assert wire.duplicates == message.duplicates


@pytest.mark.parametrize("size", [3, COLUMNAR_FROM])
def test_a_batch_with_an_undecodable_record_is_refused_whole(size: int) -> None:
    detector = Detector(Rules())
    good = [e.SerializeToString() for e in Timeline("v-1").emit(size)]
    with pytest.raises(ValueError):
        detector.decode([*good[1:], b"\xff\xff\xff"])
    assert detector.decode(good).vehicle_ids == ["v-1"] * size


def test_a_device_clock_in_1970_cannot_open_an_offline_episode() -> None:
    tl = Timeline("v-1")
    [broken] = _cruise(tl, 1)
    broken.telemetry.event_time_us = 1_000_000  # 1970, as a device with a flat RTC battery says
    after = _cruise(tl, 5)
    alerts = _alerts(_run(Detector(Rules()), [broken, *after]))
    assert [a for a in alerts if a.rule == "offline"] == []


def test_a_clock_further_than_the_allowed_skew_is_replaced_by_ingest_time() -> None:
    tl = Timeline("v-1")
    events = _cruise(tl, 3)
    events[0].telemetry.event_time_us -= 8 * 24 * 60 * MIN  # eight days off ingest's clock
    detector = Detector(Rules())
    out = _run(detector, events)
    state = VehicleState.from_bytes(dict(out.states)["v-1"])
    assert state.last_event_us == events[-1].telemetry.event_time_us
    assert [a for a in _alerts(out) if a.rule == "offline"] == []


@pytest.mark.parametrize("columnar", [False, True], ids=["messages", "ptars"])
def test_an_infinite_acceleration_raises_no_crash_alert(columnar: bool) -> None:
    tl = Timeline("v-1")
    events = _cruise(tl, 200 if columnar else 5) + tl.emit(3, accel_x=float("-inf"))
    detector = Detector(Rules())
    if columnar:
        batch = detector.decode([e.SerializeToString() for e in events])
        out = detector.process_batch(batch, [0] * len(events), now_us=NOW)
    else:
        out = _run(detector, events)
    assert [a.rule for a in _alerts(out)] == []


@pytest.mark.parametrize(
    ("threshold", "expected"),
    [
        pytest.param(90.0, [("speeding", "RESOLVED")], id="still-over-the-new-threshold"),
        pytest.param(100.0, [("speeding", "RESOLVED")], id="under-the-new-threshold"),
    ],
)
def test_new_rules_keep_an_open_episode_once(
    threshold: float, expected: list[tuple[str, str]]
) -> None:
    tl = Timeline("v-1")
    detector = Detector(Rules())
    before = _alerts(_run(detector, _cruise(tl, 5) + tl.emit(20, speed=95.0)))
    assert _said(before) == [("speeding", "OPEN")]
    detector.use_rules(Rules.parse({"speeding": {"threshold_kmh": threshold}}))
    # Still at 95 for a while, then back to town speed: one RESOLVED, the same episode, no OPEN.
    after = _alerts(_run(detector, tl.emit(30, speed=95.0) + _cruise(tl, 30)))
    assert _said(after) == expected
    assert after[0].alert_id == before[0].alert_id
    resolved_at = after[0].episode_end_us
    if threshold < 95.0:
        # Speeding went on under the new threshold: the episode ended when the vehicle slowed.
        assert resolved_at > tl.t_us - 31 * 1_000_000
    else:
        # Not speeding by the new rules from the first event after the change.
        assert resolved_at < tl.t_us - 55 * 1_000_000


def test_new_rules_open_what_the_old_ones_did_not() -> None:
    tl = Timeline("v-1")
    detector = Detector(Rules.parse({"speeding": {"threshold_kmh": 100}}))
    assert _said(_alerts(_run(detector, _cruise(tl, 5) + tl.emit(20, speed=95.0)))) == []
    detector.use_rules(Rules.parse({"speeding": {"threshold_kmh": 90}}))
    said = _said(_alerts(_run(detector, tl.emit(20, speed=95.0) + _cruise(tl, 30))))
    assert said == [("speeding", "OPEN"), ("speeding", "RESOLVED")]


def test_switching_a_rule_off_resolves_its_open_episodes_once() -> None:
    tl = Timeline("v-1")
    detector = Detector(Rules())
    detector.ownership.assign(1, [0], {})
    before = _alerts(_run(detector, _cruise(tl, 5) + tl.emit(20, speed=95.0)))
    assert _said(before) == [("speeding", "OPEN")]
    change = detector.use_rules(Rules.parse({"speeding": {"enabled": False}}), now_us=NOW + MIN)
    (resolved,) = _alerts(change)
    assert _said([resolved]) == [("speeding", "RESOLVED")]
    assert resolved.alert_id == before[0].alert_id
    assert resolved.values["switched_off"] == 1.0
    state = VehicleState.from_bytes(dict(change.states)["v-1"])
    assert resolved.episode_end_us == state.last_event_us, "at the vehicle's last event"
    assert resolved.episode_end_us > resolved.episode_start_us
    assert "speeding" not in {k.split(":")[0] for k in state.episodes}
    # Still at 95 after the change: nothing more from the switched-off rule.
    assert _said(_alerts(_run(detector, tl.emit(30, speed=95.0) + _cruise(tl, 30)))) == []


def test_switching_offline_off_still_resolves_an_open_offline_episode_at_the_next_event() -> None:
    tl = Timeline("v-1")
    detector = Detector(Rules())
    detector.ownership.assign(1, [0], {})
    _run(detector, _cruise(tl, 5))
    ticked = _alerts(detector.tick(NOW + 60 * MIN))
    assert _said(ticked) == [("offline", "OPEN")]
    detector.use_rules(Rules.parse({"offline": {"enabled": False}}))
    back = _alerts(_run(detector, _cruise(tl, 3), now_us=NOW + 61 * MIN))
    assert _said(back) == [("offline", "RESOLVED")]
    assert back[0].alert_id == ticked[0].alert_id


def test_a_trouble_code_alert_names_the_codes() -> None:
    tl = Timeline("v-1")
    events = _cruise(tl, 5) + tl.emit(15, coolant=90.0) + _cruise(tl, 80)
    for e in events[5:20]:
        e.telemetry.dtc_codes.extend(["P0217", "P0128"])
    opened, resolved = _alerts(_run(Detector(Rules()), events))
    assert (opened.rule, opened.state) == ("diagnostic_trouble_code", alert_pb2.ALERT_STATE_OPEN)
    assert opened.message == "v-1: diagnostic trouble code reported: P0217, P0128"
    assert opened.event_time_us - opened.episode_start_us == 10_000_000, "held 10 s first"
    assert resolved.state == alert_pb2.ALERT_STATE_RESOLVED


def test_service_due_opens_once_and_resolves_when_the_registry_records_the_service() -> None:
    tl = Timeline("v-1")
    events = _cruise(tl, 30)
    for i, e in enumerate(events):
        e.telemetry.odometer_km = 29_990.0 + i
        # The registry's record changes with the 20th event (a reload in enrichment).
        e.vehicle.last_service_km = 15_000.0 if i < 20 else 30_000.0
    said = _alerts(_run(Detector(Rules()), events))
    assert [(a.rule, a.state, a.seq) for a in said] == [
        ("service_due", alert_pb2.ALERT_STATE_OPEN, events[10].telemetry.seq),
        ("service_due", alert_pb2.ALERT_STATE_RESOLVED, events[20].telemetry.seq),
    ]
    assert said[0].message == "v-1: service due: 15,000 km since the last service"
