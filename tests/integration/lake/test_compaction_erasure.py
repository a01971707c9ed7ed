"""Compaction and erasure: a compaction that read bronze before an erasure and writes after it
builds the day again without the subject, and a compaction never puts an erased subject's rows
into silver or gold, even from bronze that still holds them — on a local folder and on the
S3-compatible server, against the real erasure audit in PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg
import pytest

from fleetpipe.erasure.compaction import AuditErasures
from fleetpipe.lake import layout
from fleetpipe.lake.compaction import Compactor, HoldAt
from fleetpipe.lake.store import LakeStore
from support.lakes import LakeLocations, events, write_bronze
from support.servers import Schema

pytestmark = pytest.mark.integration

HOUR_US = 3_600_000_000
T0 = 1_736_899_200_000_000  # 2025-01-15 00:00 UTC
DAY = "2025-01-15"


def _env(schema: Schema, url: str) -> dict[str, str]:
    return {
        **os.environ,
        "FLEET_POSTGRES__DSN": schema.dsn,
        "FLEET_POSTGRES__SCHEMA_NAME": schema.name,
        "FLEET_LAKE__URL": url,
        # The drill's days are in January 2025: past the default bronze retention.
        "FLEET_LAKE__BRONZE_RETENTION_DAYS": "36500",
    }


def _erase(schema: Schema, url: str, vehicle: str) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "fleetpipe.cli",
            "erase",
            "--vehicle",
            vehicle,
            "--reason",
            "drill 5",
        ],
        env={**_env(schema, url), "FLEET_OPERATOR_NAME": "lake-drill"},
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()


def _compacted(store: LakeStore) -> dict[str, list[dict[str, Any]]]:
    return {
        path: store.read_table(path).to_pylist()
        for path, _ in store.files("")
        if path.startswith((layout.SILVER, layout.GOLD))
    }


def _holding(rows: list[dict[str, Any]], vehicle: str) -> bool:
    return any(
        vehicle in (r.get("vehicle_id"), (r.get("telemetry") or {}).get("vehicle_id")) for r in rows
    )


def _assert_without(store: LakeStore, vehicle: str, others: list[str], per_vehicle: int) -> None:
    compacted = _compacted(store)
    assert {p.split("/")[0] for p in compacted} == {"silver", "gold"}
    for path, rows in compacted.items():
        assert not _holding(rows, vehicle), path
    silver = [r for p, rows in compacted.items() if p.startswith("silver/telemetry") for r in rows]
    assert Counter(r["vehicle_id"] for r in silver) == {v: per_vehicle for v in others}
    fleet_day = store.read_table(layout.gold_day("fleet_day", DAY)).to_pylist()
    assert sum(r["events"] for r in fleet_day) == per_vehicle * len(others)
    vehicle_hour = store.read_table(layout.gold_day("vehicle_hour", DAY)).to_pylist()
    assert {r["vehicle_id"] for r in vehicle_hour} == set(others)


@pytest.mark.parametrize("hold_at", [HoldAt.SILVER, HoldAt.GOLD], ids=["silver", "gold"])
def test_an_erasure_during_a_compaction_leaves_its_vehicle_out_of_silver_and_gold(
    lake_locations: LakeLocations, pg_schema: Schema, tmp_path: Path, hold_at: HoldAt
) -> None:
    url = lake_locations.new()
    store = LakeStore.from_url(url, fsync=False)
    made = events(4, 30, start_us=T0 + 10 * HOUR_US)
    vehicles = sorted({e.telemetry.vehicle_id for e in made})
    target = vehicles[2]
    write_bronze(store, tmp_path / "spool", made)
    holds: list[float] = []

    def erase_while_held(seconds: float) -> None:
        # The compaction's hold hook: the whole erasure runs inside the pause, after the
        # compaction read bronze and before it wrote (silver) or finished (gold) the day.
        if not holds:
            assert not _compacted(store) or hold_at is HoldAt.GOLD
            _erase(pg_schema, url, target)
        holds.append(seconds)

    compactor = Compactor(
        store,
        hold_s=1.0,
        hold_at=hold_at,
        sleep=erase_while_held,
        erasures=AuditErasures(pg_schema.settings),
    )
    report = compactor.run()

    (day,) = report.compacted
    assert day.rebuilt_for_erasures == 1, "the day was built again once the erasure was seen"
    assert len(holds) == 2
    _assert_without(store, target, [v for v in vehicles if v != target], 30)
    assert Compactor(store, erasures=AuditErasures(pg_schema.settings)).run().compacted == [], (
        "the manifest matches the bronze the erasure left"
    )


def test_a_compaction_never_puts_an_erased_vehicles_rows_from_bronze_into_silver(
    lake_locations: LakeLocations, pg_schema: Schema, tmp_path: Path
) -> None:
    url = lake_locations.new()
    store = LakeStore.from_url(url, fsync=False)
    made = events(3, 20, start_us=T0 + 8 * HOUR_US)
    vehicles = sorted({e.telemetry.vehicle_id for e in made})
    target = vehicles[0]
    _erase(pg_schema, url, target)
    # Bronze that reached the lake behind the erasure (a writer that did not know of it):
    # the vehicle's rows from before the erasure are in it.
    write_bronze(store, tmp_path / "spool", made)

    compact = subprocess.run(
        [sys.executable, "-m", "fleetpipe.cli", "lake", "compact", "--url", url],
        env=_env(pg_schema, url),
        capture_output=True,
        timeout=120,
        check=False,
    )

    assert compact.returncode == 0, compact.stdout.decode() + compact.stderr.decode()
    _assert_without(store, target, vehicles[1:], 20)
    bronze = store.dataset([p for p, _ in store.files("bronze")]).to_table()
    assert bronze.num_rows == 60, "bronze is the erasure's and the writer's, not compaction's"
    with psycopg.connect(pg_schema.dsn, options=f"-c search_path={pg_schema.name}") as conn:
        row = conn.execute("SELECT requested_by FROM erasure_audit").fetchone()
    assert row == ("lake-drill",), "the operator named by FLEET_OPERATOR_NAME"
