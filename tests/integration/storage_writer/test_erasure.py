"""``fleetpipe erase``: a vehicle erased from every table and every Parquet file of every layer,
every other vehicle's rows intact, the erasure in the audit log."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from typing import Any

import pytest

from fleetpipe.lake.compaction import Compactor
from fleetpipe.lake.store import LakeStore
from fleetpipe_loadtest import records
from fleetpipe_loadtest.records import now_us
from support.lakes import LakeLocations, events

from .conftest import WriterRig

pytestmark = pytest.mark.integration

HOUR_US = 3_600_000_000


def _strings(value: Any) -> list[str]:
    """Every string anywhere in a row (nested structs and lists included)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _vehicle_of(row: dict[str, Any]) -> str | None:
    if "vehicle_id" in row:
        return str(row["vehicle_id"])
    if isinstance(row.get("telemetry"), dict):
        return str(row["telemetry"]["vehicle_id"])
    return None


def _lake(store: LakeStore) -> dict[str, list[dict[str, Any]]]:
    return {path: store.read_table(path).to_pylist() for path, _ in store.files("")}


def _tables(rig: WriterRig) -> list[str]:
    return [
        name
        for (name,) in rig.sql(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = %s AND table_type = 'BASE TABLE' ORDER BY 1",
            rig.schema,
        )
    ]


def _per_vehicle(rig: WriterRig) -> dict[str, Counter[str]]:
    found = {}
    for table in _tables(rig):
        columns = {
            c
            for (c,) in rig.sql(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_schema = %s AND table_name = %s",
                rig.schema,
                table,
            )
        }
        if "vehicle_id" in columns:
            found[table] = Counter(v for (v,) in rig.sql(f"SELECT vehicle_id FROM {table}"))
    return found


def _erase(rig: WriterRig, url: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    env = {
        "FLEET_POSTGRES__DSN": rig.dsn,
        "FLEET_POSTGRES__SCHEMA_NAME": rig.schema,
        "FLEET_LAKE__URL": url,
    }
    return subprocess.run(
        [sys.executable, "-m", "fleetpipe.cli", "erase", *args],
        env={**os.environ, **env},
        capture_output=True,
        timeout=120,
        check=False,
    )


def test_an_erased_vehicle_is_nowhere_and_every_other_vehicle_is_intact(
    rig: WriterRig, lake_locations: LakeLocations
) -> None:
    url = lake_locations.new()
    made = events(5, 30, start_us=now_us() - 2 * HOUR_US)
    vehicles = sorted({e.telemetry.vehicle_id for e in made})
    target = vehicles[2]
    rig.produce(rig.topics.enriched, made)
    rig.produce(rig.topics.alerts, [records.alert(v) for v in vehicles])
    proc = rig.start("w1", FLEET_LAKE__URL=url)
    rig.wait_consumed(proc, [rig.topics.enriched, rig.topics.alerts])
    assert proc.stop() == 0
    store = LakeStore.from_url(url)
    Compactor(store).run()

    tables_before = _per_vehicle(rig)
    assert tables_before["telemetry"][target] == 30 and tables_before["alerts"][target] == 1
    lake_before = _lake(store)
    holding = {
        p.split("/")[0]
        for p, rows in lake_before.items()
        if any(target in _strings(r) for r in rows)
    }
    assert holding == {"bronze", "silver", "gold"}, "every layer held the vehicle"
    fleet_day_before = sum(
        r["events"] for p, rows in lake_before.items() if "fleet_day" in p for r in rows
    )

    refused = _erase(rig, url, "--vehicle", target)
    assert refused.returncode == 1 and b"needs a reason" in refused.stderr
    assert _per_vehicle(rig) == tables_before, "refused: nothing erased"

    done = _erase(rig, url, "--vehicle", target, "--reason", "erasure request 2025-17")
    assert done.returncode == 0, done.stderr.decode()

    # Nowhere: no row of any table, no row of any Parquet file names it.
    for table in _tables(rig):
        if table == "erasure_audit":
            continue
        hits = rig.scalar(f"SELECT count(*) FROM {table} t WHERE t::text LIKE %s", f"%{target}%")
        assert hits == 0, table
    lake_after = _lake(store)
    for path, rows in lake_after.items():
        assert not any(target in s for r in rows for s in _strings(r)), path

    # Everything else intact, table by table and file by file.
    tables_after = _per_vehicle(rig)
    for table, counts in tables_before.items():
        del counts[target]
        assert tables_after[table] == counts, table
    for path, rows in lake_before.items():
        others = Counter(_vehicle_of(r) for r in rows if _vehicle_of(r) != target)
        assert Counter(_vehicle_of(r) for r in lake_after.get(path, [])) == others, path
    fleet_day_after = sum(
        r["events"] for p, rows in lake_after.items() if "fleet_day" in p for r in rows
    )
    assert fleet_day_after == fleet_day_before - 30, "gold no longer counts its events"

    ((kind, subject, reason, deleted, files),) = rig.sql(
        "SELECT subject_kind, subject_id, reason, rows_deleted, lake_files FROM erasure_audit"
    )
    assert (kind, subject, reason) == ("vehicle", target, "erasure request 2025-17")
    assert deleted["telemetry"] == 30 and deleted["alerts"] == 1
    assert sum(f["rows_erased"] for f in files if f["path"].startswith("silver/")) == 30


def test_an_erased_driver_is_gone_from_tables_and_lake_and_other_drivers_stay(
    rig: WriterRig, lake_locations: LakeLocations
) -> None:
    url = lake_locations.new()
    made = events(4, 20, start_us=now_us() - 2 * HOUR_US)
    drivers = sorted({e.vehicle.driver_id for e in made})
    target = drivers[1]
    rig.produce(rig.topics.enriched, made)
    rig.produce(
        rig.topics.alerts,
        [records.alert(e.telemetry.vehicle_id, driver_id=e.vehicle.driver_id) for e in made[:4]],
    )
    proc = rig.start("w1", FLEET_LAKE__URL=url)
    rig.wait_consumed(proc, [rig.topics.enriched, rig.topics.alerts])
    assert proc.stop() == 0
    store = LakeStore.from_url(url)
    Compactor(store).run()
    telemetry_before = rig.scalar("SELECT count(*) FROM telemetry")

    done = _erase(rig, url, "--driver", target, "--reason", "driver left, request 88")
    assert done.returncode == 0, done.stderr.decode()

    for table in ("telemetry", "vehicle_latest", "alerts"):
        assert rig.scalar(f"SELECT count(*) FROM {table} WHERE driver_id = %s", target) == 0
    assert rig.scalar("SELECT count(*) FROM telemetry") == telemetry_before - 20
    assert rig.scalar("SELECT count(*) FROM alerts") == 3
    for path, rows in _lake(store).items():
        assert not any(target in _strings(r) for r in rows), path
    silver = store.dataset([p for p, _ in store.files("silver/telemetry")]).to_table()
    assert silver.num_rows == len(made) - 20
    ((kind, subject),) = rig.sql("SELECT subject_kind, subject_id FROM erasure_audit")
    assert (kind, subject) == ("driver", target)
