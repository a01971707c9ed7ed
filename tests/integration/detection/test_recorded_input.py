"""A recorded input — the raw topic of a real run of the load driver through ingest, stored in
``tests/data/recorded-input`` — through real enrichment and detection twice: with the raw
topic carrying the packs ingest wrote (same partitions, same boundaries), and with one record
per event as before packs. The two must give the same alerts (ids, vehicles, rules, states,
episodes).

The recording is what arrived, not what the simulator meant to send: the streams' batches
interleaved in each partition, one stream lagging behind the others, a batch re-sent after its
acknowledgement (the topic holds its events twice) and a stretch of one stream's batches lost
(seq and time gaps). How it was made: ``fleetpipe_dev.recorded.capture``. It is kept fixed on
purpose, so that simulator changes do not change this test's input.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fleetpipe.core.keygroups import KeyGroups
from fleetpipe.core.settings import KafkaSettings
from fleetpipe.pb.v1 import alert_pb2, telemetry_pb2
from fleetpipe_dev.recorded.capture import EVENTS_FILE, MANIFEST_FILE, REGISTRY_FILE
from fleetpipe_dev.recorded.fileformat import RecordedEvent, keyed, packs_of, read_recording
from fleetpipe_dev.scenarios import write_city_files
from fleetpipe_dev.testing import produce_all, produce_packs
from support.replays import alert_set, packed_and_per_event

from .conftest import Detection

pytestmark = pytest.mark.integration

RECORDING = Path(__file__).parents[2] / "data" / "recorded-input"


def _recording() -> tuple[list[RecordedEvent], dict[str, Any]]:
    events = read_recording(RECORDING / EVENTS_FILE)
    manifest = json.loads((RECORDING / MANIFEST_FILE).read_text())
    assert len(events) == manifest["events"]
    return events, manifest


def _check_it_is_a_real_input(events: list[RecordedEvent], manifest: dict[str, Any]) -> set[str]:
    """What makes the recording worth replaying: several partitions, packs of many events,
    a re-sent batch, a gap, and streams that arrive out of order with each other. Returns the
    vehicles whose seqs jump (the gap's)."""
    telemetry = [telemetry_pb2.Telemetry.FromString(e.value) for e in events]
    copies = Counter((t.vehicle_id, t.seq) for t in telemetry)
    assert sum(n - 1 for n in copies.values()) == manifest["duplicated_events"] > 0
    last: dict[str, int] = {}
    gapped: set[str] = set()
    backwards = 0
    newest: dict[int, int] = {}
    for e, t in zip(events, telemetry, strict=True):
        if t.seq > last.get(t.vehicle_id, t.seq - 1) + 1:
            gapped.add(t.vehicle_id)
        last[t.vehicle_id] = max(last.get(t.vehicle_id, 0), t.seq)
        # Behind the partition's newest event time by more than a minute: another stream's.
        if t.event_time_us < newest.get(e.partition, 0) - 60_000_000:
            backwards += 1
        newest[e.partition] = max(newest.get(e.partition, 0), t.event_time_us)
    # Not every vehicle of the lost batches had a seq in them (one may have been silent).
    assert 0 < len(gapped) <= manifest["dropped_vehicles"]
    assert backwards > 1000
    records = {(e.partition, e.record) for e in events}
    assert len({p for p, _ in records}) == manifest["partitions"]
    assert len(events) / len(records) > 5
    return gapped


def test_recorded_input_gives_the_same_alerts_packed_or_per_event(
    kafka_settings: KafkaSettings,
    detection: Callable[..., Detection],
    tmp_path: Path,
) -> None:
    events, manifest = _recording()
    gapped = _check_it_is_a_real_input(events, manifest)
    # One record per event goes by its key; it must land where the recording had it.
    groups = KeyGroups(manifest["key_groups"])
    per_event = list(keyed(events))
    moved = [
        (vehicle, e.partition)
        for (vehicle, _), e in zip(per_event, events, strict=True)
        if groups.partition(vehicle, manifest["partitions"]) != e.partition
    ]
    assert moved == []
    city = write_city_files(tmp_path)
    registry = RECORDING / REGISTRY_FILE

    packed_alerts, per_event_alerts = packed_and_per_event(
        kafka_settings,
        lambda: detection(manifest["partitions"]),
        lambda raw: produce_packs(kafka_settings, raw, packs_of(events)),
        lambda raw: produce_all(kafka_settings, raw, per_event),
        registry=registry,
        city=city,
        name="recorded",
    )

    packed = alert_set(packed_alerts)
    assert packed == alert_set(per_event_alerts)
    assert len(packed) == len(packed_alerts), "each alert is committed once"
    rules = Counter(rule for _, _, rule, _, _, _ in packed)
    assert len(rules) >= 5, rules
    # The lost batches were longer than the offline threshold: each of their vehicles is seen
    # offline, announced when its next event shows the silence.
    assert gapped <= {vehicle for _, vehicle, rule, _, _, _ in packed if rule == "offline"}
    opened = Counter(a.alert_id for a in packed_alerts if a.state == alert_pb2.ALERT_STATE_OPEN)
    assert opened and max(opened.values()) == 1, "an alert id opens once"
    assert set(opened) == {a.alert_id for a in packed_alerts}, "every alert id was opened"
