"""Silver keeps one row per (vehicle, seq) across all its hours and days: a seq re-sent with a
clock in another hour is in silver once, in the hour of its first stored copy (lowest bronze
coordinate), and counted once in gold, whatever order the copies arrive in; the key index
follows erasures and retention; a run killed after it displaced later copies, before it rebuilt
their days' gold and index, finishes them when run again — on a local folder and on an
S3-compatible server."""

from __future__ import annotations

import os
import signal
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from fleetpipe.erasure.lake import erase_from_lake
from fleetpipe.erasure.subject import Subject, SubjectKind
from fleetpipe.lake import keys, layout
from fleetpipe.lake.compaction import Compactor
from fleetpipe.lake.retention import LakeRetention, expire
from fleetpipe.lake.store import LakeStore, LakeStoreError
from fleetpipe.pb.v1 import enriched_pb2
from fleetpipe_dev.testing import wait_for
from support.lakes import LakeLocations, compact_process, events, write_bronze

pytestmark = pytest.mark.integration

HOUR_US = 3_600_000_000
T0 = 1_736_899_200_000_000  # 2025-01-15 00:00 UTC
# 23:59:40 on the 15th: twenty events a vehicle, on the 15th and the 16th.
START = T0 + 24 * HOUR_US - 20_000_000
VEHICLES, PER_VEHICLE = 4, 40


def _originals() -> list[enriched_pb2.EnrichedTelemetry]:
    return events(VEHICLES, PER_VEHICLE, start_us=START)


def _resent(
    originals: list[enriched_pb2.EnrichedTelemetry],
) -> list[enriched_pb2.EnrichedTelemetry]:
    """Every third event again, from a device whose clock jumped three hours back (the copies
    of the 15th's 23:59 land in its 20:00 hour, those of the 16th's 00:00 in the 15th's 21:00)."""
    copies = []
    for original in originals[::3]:
        copy = enriched_pb2.EnrichedTelemetry()
        copy.CopyFrom(original)
        copy.telemetry.event_time_us -= 3 * HOUR_US
        copy.telemetry.ingest_time_us -= 3 * HOUR_US
        copies.append(copy)
    return copies


def _silver(store: LakeStore) -> list[tuple[str, int, str, int]]:
    """(vehicle, seq, hour file, bronze offset) of every silver row."""
    rows = []
    for path, _ in store.files(f"{layout.SILVER}/telemetry"):
        table = store.read_table(path).select(["vehicle_id", "seq", "_kafka_offset"])
        hour = path.split("/", 2)[2].rsplit("/", 1)[0]
        rows += [(r["vehicle_id"], r["seq"], hour, r["_kafka_offset"]) for r in table.to_pylist()]
    return sorted(rows)


def _gold_events(store: LakeStore) -> tuple[int, int]:
    """Events counted by gold's fleet-days and by its vehicle-hours, over every day."""
    fleet = vehicle_hour = 0
    for path, _ in store.files(f"{layout.GOLD}/fleet_day"):
        fleet += sum(r["events"] for r in store.read_table(path).to_pylist())
    for path, _ in store.files(f"{layout.GOLD}/vehicle_hour"):
        vehicle_hour += sum(r["events"] for r in store.read_table(path).to_pylist())
    return fleet, vehicle_hour


def _outputs(store: LakeStore) -> dict[str, bytes]:
    """Every silver and gold file and the key index, with its bytes."""
    paths = [p for p, _ in store.files("") if not p.startswith(layout.BRONZE)]
    paths += [p for p, _ in store.files(layout.MANIFESTS)]
    return {p: store.read_bytes(p) or b"" for p in paths}


def _displaced(store: LakeStore, keys_held: int) -> bool:
    """Whether the copies' hours are in silver and silver holds one row per key again."""
    try:
        silver = _silver(store)
    except (LakeStoreError, pa.ArrowInvalid, FileNotFoundError):
        # An S3 object replaced between its HEAD and its ranged GETs reads torn (Arrow finds
        # no Parquet footer where the old size put it), and one listed may be gone by the time
        # it is read: the run is mid-write, read again.
        return False
    return len(silver) == keys_held and any(h.endswith("hour=20") for _, _, h, _ in silver)


def _index(store: LakeStore) -> list[tuple[str, int, str, str]]:
    rows = []
    for day in keys.indexed_days(store):
        table = keys.read_day(store, day)
        assert table is not None
        rows += [(r["vehicle_id"], r["seq"], r["day"], r["hour"]) for r in table.to_pylist()]
    return sorted(rows)


@pytest.mark.parametrize("together", [True, False], ids=["one-run", "a-run-each"])
def test_a_seq_resent_in_another_hour_is_once_in_silver_and_gold_whatever_the_order(
    lake_locations: LakeLocations, tmp_path: Path, together: bool
) -> None:
    originals = _originals()
    copies = _resent(originals)
    # The originals have the lower offsets (0...), the copies the higher ones (1000...): the
    # originals are the first stored, whichever reaches bronze first.
    batches = {"originals": (originals, 0), "copies": (copies, 1000)}
    runs = {}
    for order in (["originals", "copies"], ["copies", "originals"]):
        store = LakeStore.from_url(lake_locations.new(), fsync=False)
        for n, name in enumerate(order):
            made, first_offset = batches[name]
            spool = tmp_path / order[0] / name
            write_bronze(store, spool, made, first_offset=first_offset, instance=f"w{n}")
            if not together:
                Compactor(store).run()
        Compactor(store).run()
        runs[order[0] + "-first"] = store

    expected = sorted(
        (
            e.telemetry.vehicle_id,
            e.telemetry.seq,
            "dt=2025-01-15/hour=23"
            if e.telemetry.event_time_us < T0 + 24 * HOUR_US
            else "dt=2025-01-16/hour=00",
            i,
        )
        for i, e in enumerate(originals)
    )
    for first, store in runs.items():
        assert _silver(store) == expected, first
        assert _gold_events(store) == (len(originals), len(originals)), first
        keys_held = [(v, s) for v, s, _, _ in _index(store)]
        assert Counter(keys_held) == Counter((v, s) for v, s, _, _ in expected), first
    assert _outputs(runs["originals-first"]) == _outputs(runs["copies-first"])


def test_an_earlier_copy_arriving_later_takes_the_row_from_the_hour_and_day_that_had_it(
    lake_locations: LakeLocations, tmp_path: Path
) -> None:
    originals = _originals()
    copies = _resent(originals)
    store = LakeStore.from_url(lake_locations.new(), fsync=False)
    # The originals come from later offsets than the copies, which reach bronze afterwards
    # (a partition's backlog stored late): the copies are the first stored.
    write_bronze(store, tmp_path / "a", originals, first_offset=1000, instance="w1")
    Compactor(store).run()
    assert len(_silver(store)) == len(originals)
    gold_16_before = store.read_table(layout.gold_day("fleet_day", "2025-01-16")).to_pylist()

    write_bronze(store, tmp_path / "b", copies, instance="w2")
    report = Compactor(store).run()

    (day,) = report.compacted
    assert (day.day, day.hours_rebuilt) == ("2025-01-15", ["20", "21"])
    assert day.displaced == len(copies)
    moved = {(c.telemetry.vehicle_id, c.telemetry.seq) for c in copies}
    silver = _silver(store)
    assert len(silver) == len(originals), "one row per (vehicle, seq)"
    for vehicle, seq, hour, _ in silver:
        assert (hour in ("dt=2025-01-15/hour=20", "dt=2025-01-15/hour=21")) == (
            (vehicle, seq) in moved
        )
    assert _gold_events(store) == (len(originals), len(originals))
    gold_16 = store.read_table(layout.gold_day("fleet_day", "2025-01-16")).to_pylist()
    moved_from_16 = sum(1 for c in copies if c.telemetry.event_time_us >= T0 + 21 * HOUR_US)
    assert gold_16[0]["events"] == gold_16_before[0]["events"] - moved_from_16
    assert sorted((v, s, h) for v, s, _, h in _index(store)) == sorted(
        (v, s, hour.rsplit("=", 1)[1]) for v, s, hour, _ in silver
    ), "the index lists exactly what silver holds"

    before = _outputs(store)
    again = Compactor(store).run()
    assert again.compacted == [] and _outputs(store) == before, "a second run changes nothing"


def test_a_run_killed_after_displacing_later_copies_and_run_again_equals_an_uninterrupted_run(
    lake_locations: LakeLocations, tmp_path: Path
) -> None:
    originals = _originals()
    copies = _resent(originals)
    url = lake_locations.new()
    killed = LakeStore.from_url(url, fsync=False)
    reference = LakeStore.from_url(lake_locations.new(), fsync=False)
    for store in (killed, reference):
        # The originals are compacted first; the earlier copies reach bronze afterwards and
        # must take their rows from the 15th's 23:00 and the 16th's 00:00 hours.
        write_bronze(store, tmp_path / f"a-{id(store)}", originals, first_offset=1000)
        Compactor(store).run()
        write_bronze(store, tmp_path / f"b-{id(store)}", copies, instance="w2")
    gold_16_before = killed.read_bytes(layout.gold_day("fleet_day", "2025-01-16"))
    Compactor(reference).run()

    proc = compact_process(url, hold_ms=60_000)
    try:
        # The copies' hours are written and the later copies gone from the other hours' silver
        # (one row per key again); the run now holds before any gold or index is rewritten.
        wait_for(
            lambda: proc.poll() is None and _displaced(killed, len(originals)),
            timeout=60,
            interval=0.05,
            what="the copies' silver written and the later copies displaced",
        )
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(10)
    assert killed.read_bytes(layout.gold_day("fleet_day", "2025-01-16")) == gold_16_before, (
        "the kill landed before the displaced day's gold was rebuilt"
    )

    rerun = compact_process(url)
    output, _ = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, output.decode()
    assert _outputs(killed) == _outputs(reference)
    assert _gold_events(killed) == (len(originals), len(originals))


def test_a_lake_compacted_before_the_index_is_indexed_and_deduplicated_across_hours(
    lake_locations: LakeLocations, tmp_path: Path
) -> None:
    originals = _originals()
    store = LakeStore.from_url(lake_locations.new(), fsync=False)
    write_bronze(store, tmp_path / "a", originals, instance="w1")
    Compactor(store).run()
    for path, _ in store.files(layout.MANIFESTS):
        store.delete(path)
    # Lost with the index, the manifests are written again: their days are compacted afresh.
    write_bronze(store, tmp_path / "b", _resent(originals), first_offset=1000, instance="w2")
    Compactor(store).run()
    assert len(_silver(store)) == len(originals)
    assert _gold_events(store) == (len(originals), len(originals))


def test_erasure_and_retention_take_their_keys_out_of_the_index(
    lake_locations: LakeLocations, tmp_path: Path
) -> None:
    originals = _originals()
    store = LakeStore.from_url(lake_locations.new(), fsync=False)
    write_bronze(store, tmp_path / "a", originals, instance="w1")
    write_bronze(store, tmp_path / "b", _resent(originals), first_offset=1000, instance="w2")
    Compactor(store).run()
    erased = originals[0].telemetry.vehicle_id
    assert erased in {v for v, *_ in _index(store)}

    erase_from_lake(store, Subject(SubjectKind.VEHICLE, erased))

    assert erased not in {v for v, *_ in _index(store)}
    assert len(_index(store)) == len(_silver(store)) == len(originals) - PER_VEHICLE

    # 17 January 00:30, silver keeps a day: the 15th's hours have expired, the 16th's have not.
    expired = expire(
        store, LakeRetention(36500, 1, 36500), now=datetime(2025, 1, 17, 0, 30, tzinfo=UTC)
    )
    assert expired.index_days == ["2025-01-15"]
    assert {d for _, _, d, _ in _index(store)} == {"2025-01-16"}
    assert not store.exists(keys.keys_path("2025-01-15"))
    assert len(_index(store)) == len(_silver(store))
