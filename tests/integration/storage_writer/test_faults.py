"""The writer killed mid-batch, or left without its database for 30 s, loses and repeats
nothing."""

from __future__ import annotations

import threading
import time

import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest

from fleetpipe_dev.testing import wait_for
from fleetpipe_loadtest import records
from support.servers import PostgresHandle

from .conftest import WriterRig

pytestmark = pytest.mark.integration


def _lake_keys(rig: WriterRig) -> list[tuple[str, int]]:
    bronze = ds.dataset(rig.lake / "bronze" / "telemetry", format="parquet", partitioning="hive")
    table = bronze.to_table(
        columns={
            "vehicle_id": pc.field("telemetry", "vehicle_id"),
            "seq": pc.field("telemetry", "seq"),
        }
    )
    return list(
        zip(table.column("vehicle_id").to_pylist(), table.column("seq").to_pylist(), strict=True)
    )


def test_killed_mid_batch_and_replayed_stores_each_row_once(rig: WriterRig) -> None:
    events = list(records.enriched_stream(300, 30_000))
    # The input repeats some events, as an at-least-once producer upstream may.
    duplicates = events[1000:1500]
    sent = {(e.telemetry.vehicle_id, e.telemetry.seq) for e in events}
    rig.produce(rig.topics.enriched, events + duplicates)
    total = len(events) + len(duplicates)

    # Each batch is held after the database commit and the spool append: the kill lands
    # between the commit and the offsets.
    first = rig.start("w1", FLEET_HOLD_MS="1500", FLEET_MAX_BATCH="2000")

    def stored_but_not_committed() -> bool:
        first.check_alive()
        stored = rig.scalar("SELECT count(*) FROM telemetry") if _has_table(rig) else 0
        return stored >= 4000 and stored > rig.committed() + 1000

    wait_for(
        stored_but_not_committed, timeout=120, interval=0.2, what="a batch stored, not committed"
    )
    first.kill()
    assert rig.committed() < total

    second = rig.start("w1")  # the same instance id: it recovers its spools and watermarks
    rig.wait_consumed(second)
    assert second.stop() == 0

    stored = rig.sql("SELECT count(*), count(DISTINCT (vehicle_id, seq)) FROM telemetry")
    assert stored == [(len(sent), len(sent))]
    keys = set(rig.sql("SELECT vehicle_id, seq FROM telemetry"))
    assert keys == sent
    lake = _lake_keys(rig)
    assert set(lake) == sent, "the lake lost nothing"
    assert len(lake) - len(sent) <= len(duplicates), "only the input's own duplicates repeat"
    assert "de-duplicated on (vehicle, seq)" in second.log(), "the replay path was taken"


def _has_table(rig: WriterRig) -> bool:
    return bool(rig.scalar("SELECT to_regclass('telemetry') IS NOT NULL"))


def test_postgres_stopped_for_30s_under_load_loses_nothing(
    rig: WriterRig, postgres: PostgresHandle
) -> None:
    if postgres.server is None:
        pytest.fail("this test stops the database: run it against the session's own server")
    proc = rig.start("w1", FLEET_MAX_BATCH="2000")

    def ready() -> bool:
        proc.check_alive()
        return proc.ready()

    wait_for(ready, timeout=60, what="the writer ready")

    sent: set[tuple[str, int]] = set()
    stop = threading.Event()
    errors: list[BaseException] = []

    def load() -> None:
        # 200 vehicles, one event each every ~0.2 s: a steady stream through the outage.
        seq = 0
        try:
            while not stop.is_set():
                seq += 1
                batch = [records.enriched(v, seq) for v in range(200)]
                rig.produce(rig.topics.enriched, batch)
                sent.update((e.telemetry.vehicle_id, e.telemetry.seq) for e in batch)
                time.sleep(0.2)  # the load's pace: the scenario, not a wait
        except BaseException as exc:  # surfaced by the test below
            errors.append(exc)

    loader = threading.Thread(target=load, daemon=True)
    loader.start()
    try:
        wait_for(
            lambda: rig.scalar("SELECT count(*) FROM telemetry") >= 2000,
            timeout=60,
            what="rows stored before the outage",
        )
        postgres.stop()
        try:
            outage_started = time.monotonic()
            committed_at_stop = rig.committed()
            readiness = []
            # The outage lasts 30 s whatever happens: the scenario, sampled once a second.
            while time.monotonic() - outage_started < 30:
                proc.check_alive()  # the writer waits; it does not crash
                readiness.append(proc.ready())
                time.sleep(1)
            # Offsets did not run ahead of the database while it was away.
            assert rig.committed() - committed_at_stop <= 2000
            assert False in readiness, "the writer says it is waiting"
        finally:
            postgres.start()
        # A little more load after the database is back (as much as ~3 s of it), then stop.
        sent_at_restart = len(sent)
        wait_for(
            lambda: bool(errors) or len(sent) >= sent_at_restart + 3000,
            timeout=60,
            what="3,000 more events sent after the database is back",
        )
    finally:
        stop.set()
        loader.join(60)
    assert not errors, errors
    rig.wait_consumed(proc, timeout=180)
    assert "waiting" in proc.log() or "rewinding" in proc.log()

    stored = set(rig.sql("SELECT vehicle_id, seq FROM telemetry"))
    assert stored == sent, f"missing {len(sent - stored)}, extra {len(stored - sent)}"
    assert rig.scalar("SELECT count(*) FROM telemetry") == len(sent)
    assert proc.stop() == 0
