"""The storage benchmark's erasures on the real PostgreSQL: recorded as ``fleetpipe erase``
records them, read and applied by the storage writer's own store, and of no vehicle of the
input, so the variant stores every row the others store while its check does the work."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import SecretStr

from fleetpipe.core.db import PostgresSettings, connect
from fleetpipe.pb.v1 import enriched_pb2
from fleetpipe.storage_writer import columns
from fleetpipe.storage_writer.database import HotStore, WriteBatch
from fleetpipe.storage_writer.partitions import hot_window
from fleetpipe_dev.bench.storage_erasures import other_vehicles, record_erasures
from fleetpipe_loadtest import records
from support.servers import Schema

pytestmark = pytest.mark.integration

VEHICLES = 40


def _telemetry(events: list[enriched_pb2.EnrichedTelemetry]) -> WriteBatch:
    decoded = columns.TelemetryDecoder().decode([e.SerializeToString() for e in events])
    rows = columns.telemetry_rows(decoded)
    assert not rows.invalid, rows.invalid
    return WriteBatch(telemetry=rows.table)


def test_the_bench_erasures_are_applied_by_the_writer_and_leave_the_input_whole(
    pg_schema: Schema,
) -> None:
    erased = other_vehicles(VEHICLES, 6)
    assert record_erasures(pg_schema.dsn, pg_schema.name, erased) == 6
    settings = PostgresSettings(dsn=SecretStr(pg_schema.dsn), schema_name=pg_schema.name)
    store = HotStore(settings, application_name="test")
    try:
        store.migrate(timeout_s=30)
        store.maintain(
            hot_window(datetime.now(UTC), retention_days=3, ahead_days=2),
            events_retention_days=90,
        )
        # The input as the bench makes it, and one event of the first erased vehicle from a
        # minute before its erasure: the check that passes the input must be one that bites.
        made = list(records.enriched_stream(VEHICLES, 10 * VEHICLES))
        late = records.enriched(VEHICLES, 1, event_time_us=records.now_us() - 60_000_000)
        assert late.telemetry.vehicle_id == erased[0]
        result = store.write(_telemetry([*made, late]))
    finally:
        store.close()
    with connect(settings, application_name="test") as conn:
        stored = conn.execute("SELECT vehicle_id, count(*) FROM telemetry GROUP BY 1").fetchall()
    assert result.erased == {"telemetry": 1}
    assert {str(v): n for v, n in stored} == {f"fleet-1-veh-{i:06d}": 10 for i in range(VEHICLES)}
