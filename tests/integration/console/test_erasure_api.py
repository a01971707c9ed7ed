"""Erasure from the console: a fleet's token erases its vehicle, with a reason, from the hot
store and the lake, and gets the audit record; without a reason it is 422 naming the field,
and another fleet's vehicle is 404 (nothing erased)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleetpipe.lake.store import LakeStore
from fleetpipe_dev.stack.console import LocalConsole
from fleetpipe_loadtest import records
from support.console import TOKEN_A, TOKEN_B, Console
from support.hotstore import HotStoreData
from support.lakes import write_bronze

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def lake(hot: HotStoreData, workdir: Path) -> Path:
    """Bronze holding two of fleet-a's vehicles, ten events each."""
    path = workdir / f"lake-{hot.schema}"
    made = []
    for vehicle in hot.facts.a_vehicles[:2]:
        for seq in range(1, 11):
            e = records.enriched(0, seq, fleet="fleet-a")
            e.telemetry.vehicle_id = vehicle
            made.append(e)
    write_bronze(LakeStore.from_url(path), workdir / f"spools-{hot.schema}", made)
    return path


@pytest.fixture(scope="module")
def eraser_console(hot: HotStoreData, lake: Path, workdir: Path) -> Iterator[Console]:
    local = LocalConsole(
        hot.kafka,
        hot.topics,
        hot.dsn,
        hot.schema,
        workdir / f"console-erasure-{hot.schema}.log",
        tokens={TOKEN_A: ["fleet-a"], TOKEN_B: ["fleet-b"]},
        extra={"FLEET_ERASURE__ENABLED": "true", "FLEET_ERASURE__LAKE_PATH": str(lake)},
    )
    local.start()
    try:
        yield Console(local)
    finally:
        assert local.stop() == 0


def _rows(hot: HotStoreData, vehicle: str) -> int:
    ((n,),) = hot.sql("SELECT count(*) FROM telemetry WHERE vehicle_id = %s", vehicle)
    return int(str(n))


def _lake_vehicles(lake: Path) -> Counter[str]:
    store = LakeStore.from_url(lake)
    return Counter(
        r["telemetry"]["vehicle_id"]
        for p, _ in store.files("bronze")
        for r in store.read_table(p).to_pylist()
    )


def test_an_erasure_without_a_reason_or_of_another_fleets_vehicle_is_refused(
    eraser_console: Console, hot: HotStoreData, lake: Path
) -> None:
    vehicle = hot.facts.a_vehicles[0]
    url = f"/api/v1/vehicles/{vehicle}/erasure"
    before = _rows(hot, vehicle)
    assert before > 0
    with eraser_console.client(TOKEN_A) as client:
        for body in ({}, {"reason": "   "}):
            missing = client.post(url, json=body)
            assert missing.status_code == 422, missing.text
            assert missing.json()["detail"][0]["loc"] == ["body", "reason"]
    with eraser_console.client(TOKEN_B) as client:
        other = client.post(url, json={"reason": "request 12"})
        assert other.status_code == 404, other.text
    with eraser_console.client(None) as client:
        assert client.post(url, json={"reason": "request 12"}).status_code == 401
    assert _rows(hot, vehicle) == before
    assert _lake_vehicles(lake)[vehicle] == 10
    assert hot.sql("SELECT to_regclass('erasure_audit') IS NULL") == [(True,)], "no erasure yet"


def test_a_fleets_token_erases_its_vehicle_and_gets_the_audit_record(
    eraser_console: Console, hot: HotStoreData, lake: Path
) -> None:
    vehicle, kept = hot.facts.a_vehicles[0], hot.facts.a_vehicles[1]
    stored, kept_rows = _rows(hot, vehicle), _rows(hot, kept)
    with eraser_console.client(TOKEN_A) as client:
        done = client.post(
            f"/api/v1/vehicles/{vehicle}/erasure",
            json={"reason": "erasure request 2026-4", "requested_by": "dpo@fleet-a"},
        )
    assert done.status_code == 200, done.text
    record = done.json()
    assert record["subject_kind"] == "vehicle" and record["subject_id"] == vehicle
    assert record["reason"] == "erasure request 2026-4"
    assert record["requested_by"] == "console (fleet-a): dpo@fleet-a"
    assert record["rows_deleted"]["telemetry"] == stored
    assert record["completed_at"] is not None
    assert sum(f["rows_erased"] for f in record["lake_files"]) == 10

    assert _rows(hot, vehicle) == 0 and _rows(hot, kept) == kept_rows
    assert hot.sql("SELECT count(*) FROM vehicle_latest WHERE vehicle_id = %s", vehicle) == [(0,)]
    in_lake = _lake_vehicles(lake)
    assert in_lake[vehicle] == 0 and in_lake[kept] == 10
    ((erasure_id, subject),) = hot.sql("SELECT erasure_id, subject_id FROM erasure_audit")
    assert (erasure_id, subject) == (record["erasure_id"], vehicle)
