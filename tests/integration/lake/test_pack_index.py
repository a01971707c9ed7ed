"""The position of a bronze row in its pack (``_kafka_pack_index``) through the lake's later
steps, on a local folder and on an S3-compatible server: bronze files written before it was
kept compact together with newer ones (null where it was not known), silver carries it, the
rejected rows of one pack come out in its order, and an erasure's rewrite keeps it."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from fleetpipe.erasure.lake import erase_from_lake
from fleetpipe.erasure.subject import Subject, SubjectKind
from fleetpipe.lake import layout
from fleetpipe.lake.compaction import Compactor
from fleetpipe.lake.store import LakeStore
from fleetpipe.pb.v1 import enriched_pb2
from support.lakes import LakeLocations, events, write_bronze

pytestmark = pytest.mark.integration

HOUR_US = 3_600_000_000
T0 = 1_736_899_200_000_000  # 2025-01-15 00:00 UTC
PACK = 10
Key = tuple[str, int]


def _key(e: enriched_pb2.EnrichedTelemetry) -> Key:
    return e.telemetry.vehicle_id, e.telemetry.seq


def _positions(table: pa.Table) -> dict[Key, tuple[int, int, int | None]]:
    """(vehicle, seq) → (partition, offset, position in the pack) of each row."""
    rows = table.select(
        ["vehicle_id", "seq", "_kafka_partition", "_kafka_offset", layout.PACK_INDEX]
    ).to_pylist()
    return {
        (r["vehicle_id"], r["seq"]): (
            r["_kafka_partition"],
            r["_kafka_offset"],
            r[layout.PACK_INDEX],
        )
        for r in rows
    }


def test_bronze_from_before_and_after_the_pack_index_compacts_in_either_order(
    lake_locations: LakeLocations, tmp_path: Path
) -> None:
    store = LakeStore.from_url(lake_locations.new(), fsync=False)
    expected: dict[Key, tuple[int, int, int | None]] = {}
    # Hour 14: the older file sorts first (the dataset's schema has no index column);
    # hour 15: the newer one does. Each file is 40 events in packs of 10 on a partition.
    layouts = [
        (14, [("w1", 0, False), ("w2", 1, True)]),
        (15, [("w3", 2, True), ("w4", 3, False)]),
    ]
    for hour, files in layouts:
        for n, (instance, partition, kept) in enumerate(files):
            made = events(4, 10, start_us=T0 + hour * HOUR_US + n * 100_000_000)
            for e in made:
                e.telemetry.fleet_id = e.vehicle.fleet_id = f"fleet-{partition}"
                e.telemetry.vehicle_id = f"{e.telemetry.vehicle_id}-p{partition}"
            write_bronze(
                store,
                tmp_path / "spool",
                made,
                partition=partition,
                first_offset=50,
                instance=instance,
                events_per_record=PACK,
                pack_index=kept,
            )
            for i, e in enumerate(made):
                expected[_key(e)] = (partition, 50 + i // PACK, i % PACK if kept else None)

    report = Compactor(store).run()

    (day,) = report.compacted
    assert day.silver_rows == len(expected) == 160
    for hh in ("14", "15"):
        silver = store.read_table(layout.silver_hour("telemetry", "2025-01-15", hh))
        assert silver.schema.field(layout.PACK_INDEX).type == pa.int32()
        names = silver.schema.names
        assert names.index(layout.PACK_INDEX) == names.index("_kafka_offset") + 1
    silver = store.dataset([p for p, _ in store.files("silver/telemetry")]).to_table()
    assert _positions(silver) == expected, "each row's record and place in it, null if unknown"


def test_rejected_rows_of_one_pack_come_out_in_its_order(
    lake_locations: LakeLocations, tmp_path: Path
) -> None:
    store = LakeStore.from_url(lake_locations.new(), fsync=False)
    made = events(5, 4, start_us=T0 + 9 * HOUR_US)
    # One pack of all 20 events, the rejected ones at these positions.
    bad = [17, 2, 11, 5]
    for i in bad:
        made[i].telemetry.battery.pct = 150.0
    write_bronze(store, tmp_path / "spool", made, first_offset=7, events_per_record=len(made))

    Compactor(store).run()

    rejected = store.read_table(layout.silver_hour("rejected", "2025-01-15", "09"))
    assert rejected["_kafka_offset"].to_pylist() == [7] * len(bad)
    assert rejected[layout.PACK_INDEX].to_pylist() == sorted(bad)
    assert rejected["seq"].to_pylist() == [made[i].telemetry.seq for i in sorted(bad)]


def test_an_erasure_rewrites_bronze_and_silver_with_the_pack_index(
    lake_locations: LakeLocations, tmp_path: Path
) -> None:
    store = LakeStore.from_url(lake_locations.new(), fsync=False)
    made = events(4, 15, start_us=T0 + 11 * HOUR_US)
    write_bronze(store, tmp_path / "spool", made, events_per_record=PACK)
    Compactor(store).run()
    target = made[0].telemetry.vehicle_id
    others = {
        _key(e): (0, i // PACK, i % PACK)
        for i, e in enumerate(made)
        if e.telemetry.vehicle_id != target
    }

    done = erase_from_lake(store, Subject(SubjectKind.VEHICLE, target))

    assert {f.path.split("/")[0] for f in done} >= {"bronze", "silver"}
    (bronze_file,) = [p for p, _ in store.files("bronze/telemetry")]
    bronze = store.read_table(bronze_file)
    flat = bronze.select(["_kafka_partition", "_kafka_offset", layout.PACK_INDEX]).add_column(
        0, "vehicle_id", bronze["telemetry"].combine_chunks().field("vehicle_id")
    )
    flat = flat.add_column(1, "seq", bronze["telemetry"].combine_chunks().field("seq"))
    assert _positions(flat) == others
    silver = store.read_table(layout.silver_hour("telemetry", "2025-01-15", "11"))
    assert _positions(silver) == others
