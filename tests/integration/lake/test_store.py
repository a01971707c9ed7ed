"""The lake's one filesystem layer, on a local folder and on an S3-compatible server."""

from __future__ import annotations

import pyarrow as pa
import pytest

from fleetpipe.lake.store import LakeStore, LakeStoreError
from support.lakes import LakeLocations, S3Handle

pytestmark = pytest.mark.integration

SILVER_FILE = "silver/telemetry/dt=2025-01-15/hour=14/part-0.parquet"


def test_a_file_is_written_listed_read_replaced_and_deleted(
    lake_locations: LakeLocations,
) -> None:
    store = LakeStore.from_url(lake_locations.new(), fsync=False)
    first = pa.table({"vehicle_id": ["v-1", "v-2"], "seq": [1, 2]})
    store.write_parquet(first, SILVER_FILE)
    store.write_bytes("_compaction/telemetry/dt=2025-01-15.json", b'{"hours": {}}')

    (listed,) = store.files("silver")
    assert listed[0] == SILVER_FILE and listed[1] > 0
    assert store.files("") == [listed], "names under _ are hidden from readers"
    assert store.read_table(SILVER_FILE).equals(first)

    second = pa.table({"vehicle_id": ["v-3"], "seq": [3]})
    store.write_parquet(second, SILVER_FILE)
    assert store.read_table(SILVER_FILE).equals(second)
    assert len(store.files("silver")) == 1, "replaced in place, no second file"

    assert store.read_bytes("_compaction/telemetry/dt=2025-01-15.json") == b'{"hours": {}}'
    assert store.read_bytes("_compaction/telemetry/dt=2025-01-16.json") is None
    assert store.delete(SILVER_FILE)
    assert not store.delete(SILVER_FILE)
    assert store.files("silver") == []


def test_a_bucket_that_does_not_exist_is_a_clear_error(s3: S3Handle) -> None:
    store = LakeStore.from_url(s3.server.url("no-such-bucket", "lake"))
    with pytest.raises(LakeStoreError, match="s3://no-such-bucket/lake"):
        store.write_parquet(pa.table({"a": [1]}), "bronze/x/part-0.parquet")
