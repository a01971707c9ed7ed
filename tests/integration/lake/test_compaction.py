"""Bronze → silver and gold: range checks with reasons, idempotent runs, and a run killed with
SIGKILL halfway — on a local folder and on an S3-compatible server."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from fleetpipe.lake import layout
from fleetpipe.lake.compaction import Compactor
from fleetpipe.lake.store import LakeStore
from fleetpipe_dev.testing import wait_for
from support.lakes import LakeLocations, compact_process, events, write_bronze

pytestmark = pytest.mark.integration

DAY_US = 86_400_000_000
HOUR_US = 3_600_000_000
T0 = 1_736_899_200_000_000  # 2025-01-15 00:00 UTC


def _silver_keys(store: LakeStore) -> list[tuple[str, int]]:
    files = [p for p, _ in store.files("silver/telemetry")]
    table = store.dataset(files).to_table(columns=["vehicle_id", "seq"])
    return list(zip(table["vehicle_id"].to_pylist(), table["seq"].to_pylist(), strict=True))


def test_silver_drops_out_of_range_rows_with_their_reason_and_keeps_the_rest(
    lake_locations: LakeLocations, tmp_path: Path
) -> None:
    store = LakeStore.from_url(lake_locations.new(), fsync=False)
    made = events(4, 30, start_us=T0 + 14 * HOUR_US)
    made[3].telemetry.location.lat = 95.0
    made[5].telemetry.motion.speed_kmh = float("nan")
    made[7].telemetry.battery.pct = 180.0
    made[9].telemetry.event_time_us = made[9].telemetry.ingest_time_us + 2 * HOUR_US
    write_bronze(store, tmp_path / "spool", made)

    report = Compactor(store).run()

    (day,) = report.compacted
    assert (day.silver_rows, day.rejected_rows, day.duplicates) == (116, 4, 0)
    rejected = store.dataset([p for p, _ in store.files("silver/rejected")]).to_table()
    reasons = {
        (r["vehicle_id"], r["seq"]): r["reason"]
        for r in rejected.select(["vehicle_id", "seq", "reason"]).to_pylist()
    }
    key = [(made[i].telemetry.vehicle_id, made[i].telemetry.seq) for i in (3, 5, 7, 9)]
    assert reasons == {
        key[0]: "location out of range",
        key[1]: "speed out of range",
        key[2]: "battery out of range",
        key[3]: "event time more than an hour after ingest",
    }
    dropped = set(key)
    kept = {(e.telemetry.vehicle_id, e.telemetry.seq) for e in made} - dropped
    assert sorted(_silver_keys(store)) == sorted(kept)
    silver = store.read_table(layout.silver_hour("telemetry", "2025-01-15", "14"))
    assert silver.schema.field("ingest_time").type.tz == "UTC"
    assert silver["vehicle"].combine_chunks().field("model").to_pylist()[0] == "Transit"
    assert silver["_kafka_offset"].to_pylist()[0] >= 0, "lineage is carried into silver"


def test_a_second_run_changes_nothing_and_new_bronze_rebuilds_only_its_hour(
    lake_locations: LakeLocations, tmp_path: Path
) -> None:
    store = LakeStore.from_url(lake_locations.new(), fsync=False)
    write_bronze(store, tmp_path / "spool", events(3, 20, start_us=T0 + 10 * HOUR_US))
    next_day = events(3, 20, start_us=T0 + DAY_US, seq_after=20)
    write_bronze(store, tmp_path / "spool", next_day, first_offset=60)
    first = Compactor(store).run()
    assert [d.day for d in first.compacted] == ["2025-01-15", "2025-01-16"]
    before = {p: store.read_bytes(p) for p, _ in store.files("")}

    again = Compactor(store).run()
    assert again.compacted == [] and again.unchanged == ["2025-01-15", "2025-01-16"]
    assert {p: store.read_bytes(p) for p, _ in store.files("")} == before

    late = events(3, 20, start_us=T0 + 12 * HOUR_US, fleet="fleet-2")
    write_bronze(store, tmp_path / "spool2", late, first_offset=120, instance="w2")
    third = Compactor(store).run()
    (day,) = third.compacted
    assert (day.day, day.hours_rebuilt, day.silver_rows) == ("2025-01-15", ["12"], 60)
    fleet_day = store.read_table(layout.gold_day("fleet_day", "2025-01-15")).to_pylist()
    assert [(r["fleet_id"], r["events"], r["vehicles"]) for r in fleet_day] == [
        ("fleet-1", 60, 3),
        ("fleet-2", 60, 3),
    ]


class _Reader(threading.Thread):
    """Reads every visible compacted file again and again while the job runs: a reader must
    never meet a partial file."""

    def __init__(self, store: LakeStore) -> None:
        super().__init__(daemon=True)
        self.store = store
        self.stopping = threading.Event()
        self.files_read = 0
        self.failures: list[str] = []

    def run(self) -> None:
        while not self.stopping.is_set():
            for path, _ in self.store.files(""):
                try:
                    pq.read_table(self.store.full(path), filesystem=self.store.fs)
                    self.files_read += 1
                except FileNotFoundError:
                    continue  # replaced between the listing and the read
                except Exception as exc:
                    self.failures.append(f"{path}: {exc}")


def test_a_run_killed_halfway_and_run_again_gives_what_an_uninterrupted_run_gives(
    lake_locations: LakeLocations, tmp_path: Path
) -> None:
    url = lake_locations.new()
    killed = LakeStore.from_url(url, fsync=False)
    reference = LakeStore.from_url(lake_locations.new(), fsync=False)
    for store in (killed, reference):
        for day in range(3):
            made = events(
                5, 40, start_us=T0 + day * DAY_US + 23 * HOUR_US - 20_000_000, seq_after=day * 40
            )
            write_bronze(store, tmp_path / f"spool-{id(store)}", made, first_offset=day * 200)
    Compactor(reference).run()

    reader = _Reader(killed)
    reader.start()
    try:
        proc = compact_process(url, hold_ms=60_000)
        # The first day's silver is written; the job now holds before its gold and manifest.
        wait_for(
            lambda: proc.poll() is None and bool(killed.files("silver")),
            timeout=60,
            interval=0.05,
            what="the first day's silver",
        )
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        assert killed.files("gold") == [], "the kill landed before any gold was written"
        assert killed.read_bytes(layout.manifest("telemetry", "2025-01-15")) is None

        rerun = compact_process(url)
        output, _ = rerun.communicate(timeout=120)
        assert rerun.returncode == 0, output.decode()
    finally:
        reader.stopping.set()
        reader.join(30)

    assert reader.failures == [] and reader.files_read > 0
    outputs = [p for p, _ in reference.files("") if not p.startswith(layout.BRONZE)]
    assert len(outputs) == 3 * 2 + 3 * 2, "silver for two hours and two gold files per day"
    assert [p for p, _ in killed.files("") if not p.startswith(layout.BRONZE)] == outputs
    for path in outputs:
        assert killed.read_bytes(path) == reference.read_bytes(path), path
