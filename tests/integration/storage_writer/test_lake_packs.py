"""Bronze from packed records on the real broker: each event of a pack is a row of its own,
named by the pack's topic, partition and offset and its position in the pack, so every row
leads back to exactly one event; a record that holds one event is position 0."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest

from fleetpipe.core.packs import events_of, is_pack
from fleetpipe.lake.store import LakeStore
from fleetpipe.pb.v1 import enriched_pb2
from fleetpipe_dev.testing import produce_packed, read_all
from fleetpipe_loadtest.records import now_us
from support.lakes import LakeLocations, events

from .conftest import WriterRig
from .test_lake_layers import _same

pytestmark = pytest.mark.integration

HOUR_US = 3_600_000_000
PER_PACK = 25


def test_each_event_of_a_pack_is_one_bronze_row_at_the_packs_offset_and_its_position(
    rig: WriterRig, lake_locations: LakeLocations
) -> None:
    url = lake_locations.new()
    made = events(12, 20, start_us=now_us() - HOUR_US)
    packed, single = made[:200], made[200:]
    packs = produce_packed(
        rig.kafka,
        rig.topics.enriched,
        ((e.telemetry.vehicle_id, e.SerializeToString()) for e in packed),
        events_per_pack=PER_PACK,
    )
    # Single records beside the packs, as a topic holds them from before packs.
    rig.produce(rig.topics.enriched, single)
    proc = rig.start("w1", FLEET_LAKE__URL=url)
    rig.wait_consumed(proc)
    assert proc.stop() == 0

    store = LakeStore.from_url(url)
    bronze = store.dataset([p for p, _ in store.files("bronze/telemetry")]).to_table()
    rows = bronze.to_pylist()
    assert len(rows) == len(made)
    by_record: defaultdict[tuple[int, int], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        assert row["_kafka_topic"] == rig.topics.enriched
        by_record[(row["_kafka_partition"], row["_kafka_offset"])].append(row)
    in_kafka = {
        (m.partition(), m.offset()): m
        for m in read_all(rig.kafka, rig.topics.enriched, read_committed=False, idle_s=1)
    }
    assert set(by_record) == set(in_kafka), "one group of rows per Kafka record"

    sizes: dict[str, list[int]] = {"pack": [], "single": []}
    for coordinates, found in by_record.items():
        msg = in_kafka[coordinates]
        read_back = events_of(msg)
        positions = sorted(r["_kafka_pack_index"] for r in found)
        assert positions == list(range(len(read_back))), coordinates
        for row in found:
            event = read_back[row["_kafka_pack_index"]]
            _same(row, enriched_pb2.EnrichedTelemetry.FromString(event.value() or b""))
        sizes["pack" if is_pack(msg.headers()) else "single"].append(len(found))
    assert len(sizes["pack"]) == packs
    assert sum(sizes["pack"]) == len(packed)
    assert max(sizes["pack"]) == PER_PACK, "full packs of 25 events at one offset each"
    assert sizes["single"] == [1] * len(single)
