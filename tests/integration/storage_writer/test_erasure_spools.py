"""An erasure while the storage writer's spools still hold the vehicle's rows: the writer leaves
them out when it rolls the spools, so no row of the vehicle reaches any lake layer afterwards,
and every other vehicle's rows do."""

from __future__ import annotations

from collections import Counter

import pytest

from fleetpipe.lake.compaction import Compactor
from fleetpipe.lake.store import LakeStore
from fleetpipe_loadtest import records
from fleetpipe_loadtest.records import now_us
from support.lakes import LakeLocations, events

from .conftest import WriterRig
from .test_erasure import _erase, _strings, _vehicle_of

pytestmark = pytest.mark.integration

HOUR_US = 3_600_000_000


def test_rows_spooled_before_an_erasure_never_reach_the_lake(
    rig: WriterRig, lake_locations: LakeLocations
) -> None:
    url = lake_locations.new()
    made = events(4, 25, start_us=now_us() - 2 * HOUR_US)
    vehicles = sorted({e.telemetry.vehicle_id for e in made})
    target = vehicles[1]
    rig.produce(rig.topics.enriched, made)
    rig.produce(rig.topics.alerts, [records.alert(v) for v in vehicles])
    # Spools roll on shutdown only: the rows wait in them, past their offsets' commit.
    proc = rig.start("w1", FLEET_LAKE__URL=url, FLEET_LAKE__MAX_FILE_AGE_S="3600")
    rig.wait_consumed(proc, [rig.topics.enriched, rig.topics.alerts])
    store = LakeStore.from_url(url)
    assert store.files("bronze") == [], "nothing rolled yet"
    assert list((rig.lake / "_spool").rglob("*.arrows")), "the rows are in the spools"
    assert rig.scalar("SELECT count(*) FROM telemetry WHERE vehicle_id = %s", target) == 25

    done = _erase(rig, url, "--vehicle", target, "--reason", "erasure request 31")
    assert done.returncode == 0, done.stderr.decode()
    assert proc.stop() == 0  # a graceful stop rolls every spool into Parquet
    assert not list((rig.lake / "_spool").rglob("*.arrows"))
    Compactor(store).run()

    lake = {path: store.read_table(path).to_pylist() for path, _ in store.files("")}
    assert {p.split("/")[0] for p in lake} == {"bronze", "silver", "gold"}
    for path, rows in lake.items():
        assert not any(target in s for r in rows for s in _strings(r)), path
    bronze = Counter(
        _vehicle_of(r)
        for p, rows in lake.items()
        if p.startswith("bronze/telemetry/")
        for r in rows
    )
    assert bronze == {v: 25 for v in vehicles if v != target}
    alerts = [r for p, rows in lake.items() if p.startswith("bronze/alerts/") for r in rows]
    assert sorted(r["vehicle_id"] for r in alerts) == [v for v in vehicles if v != target]
    silver = store.dataset([p for p, _ in store.files("silver/telemetry")]).to_table()
    assert silver.num_rows == 75
    assert rig.scalar("SELECT count(*) FROM telemetry WHERE vehicle_id = %s", target) == 0
    assert rig.scalar("SELECT count(*) FROM telemetry") == 75
    ((subject, completed),) = rig.sql("SELECT subject_id, completed_at FROM erasure_audit")
    assert subject == target and completed is not None
    log = (rig.workdir / "w1.log").read_text()
    assert "spooled row(s) of vehicle" in log, "the writer says what it left out"
