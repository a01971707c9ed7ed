"""Two storage writers of the same vehicles at once, as the old and the new owner of a partition
during a handover, on the real PostgreSQL: each (vehicle, seq) is stored once whatever the
interleaving, and a writer's remembered marks do not outlive another writer's batches.

The copies differ in their event day, so the primary key (which holds the day) cannot catch
them: only the writers' claims of key groups can. A writer's transaction is held open by a
third session locking ``dead_letters``, the last table the batch writes: the writer has
claimed its key groups and copied its telemetry, and waits there until the test lets it go.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest

from fleetpipe.core.db import connect
from fleetpipe.core.keygroups import KeyGroups
from fleetpipe.pb.v1 import enriched_pb2
from fleetpipe.storage_writer import columns
from fleetpipe.storage_writer.database import HotStore, WriteBatch, WriteResult
from fleetpipe.storage_writer.deadletters import DEAD_LETTER_SCHEMA
from fleetpipe.storage_writer.partitions import hot_window
from fleetpipe_dev.testing import wait_for
from fleetpipe_loadtest import records
from support.servers import Schema

pytestmark = pytest.mark.integration

US = 1_000_000
VEHICLE = 1
VEHICLE_ID = "fleet-1-veh-000001"


def _day_us(day: date) -> int:
    """Noon of ``day`` (UTC) in Unix microseconds."""
    return int(datetime(day.year, day.month, day.day, 12, tzinfo=UTC).timestamp()) * US


def _batch(
    seqs: range | list[int], day: date, *, vehicle: int = VEHICLE, dead_letter: bool = False
) -> WriteBatch:
    events: list[enriched_pb2.EnrichedTelemetry] = [
        records.enriched(vehicle, s, event_time_us=_day_us(day) + s * US) for s in seqs
    ]
    decoded = columns.TelemetryDecoder().decode([e.SerializeToString() for e in events])
    rows = columns.telemetry_rows(decoded)
    assert not rows.invalid, rows.invalid
    batch = WriteBatch(telemetry=rows.table)
    if dead_letter:
        # Written last in the batch's transaction: where the test holds it open.
        batch.dead_letters = pa.Table.from_pylist(
            [
                {
                    "dl_partition": 0,
                    "dl_offset": seqs[0],
                    "reason": "invalid",
                    "error": "a held batch",
                    "service": "test",
                    "source_topic": "t",
                    "source_partition": 0,
                    "source_offset": 0,
                    "record_key": None,
                    "payload_bytes": 0,
                    "time": datetime.now(UTC),
                }
            ],
            schema=DEAD_LETTER_SCHEMA,
        )
    return batch


class Rig:
    """Two writers (two stores, two connections, as two replicas have) and a third session."""

    def __init__(self, schema: Schema) -> None:
        self.settings = schema.settings
        self.a = HotStore(self.settings, application_name="writer-a")
        self.b = HotStore(self.settings, application_name="writer-b")
        self.today = datetime.now(UTC).date()
        self.yesterday = self.today - timedelta(days=1)
        self.threads = ThreadPoolExecutor(max_workers=2)

    def close(self) -> None:
        self.threads.shutdown(wait=True, cancel_futures=True)
        self.a.close()
        self.b.close()

    def sql(self, query: str, *args: Any) -> list[tuple[Any, ...]]:
        with connect(self.settings, application_name="test") as conn:
            return conn.execute(query.encode(), args or None).fetchall()

    def stored(self, seq: int, vehicle_id: str = VEHICLE_ID) -> list[tuple[Any, ...]]:
        return self.sql(
            "SELECT event_day FROM telemetry WHERE vehicle_id = %s AND seq = %s",
            vehicle_id,
            seq,
        )

    def activity(self, application_name: str) -> tuple[str | None, str | None, str]:
        """What a writer's backend is doing: (wait event type, wait event, statement)."""
        rows = self.sql(
            "SELECT wait_event_type, wait_event, query FROM pg_stat_activity "
            "WHERE application_name = %s",
            application_name,
        )
        assert len(rows) == 1, rows
        kind, event, query = rows[0]
        return kind, event, str(query)

    def wait_blocked(self, application_name: str, *, on: str) -> None:
        """Until the writer's backend waits for a lock in a statement that mentions ``on``."""

        def blocked() -> bool:
            kind, _, query = self.activity(application_name)
            return kind == "Lock" and on in query

        wait_for(blocked, timeout=30, interval=0.05, what=f"{application_name} to wait on {on}")

    @contextmanager
    def dead_letters_locked(self) -> Iterator[None]:
        """Hold every insert into ``dead_letters`` until the block ends."""
        with connect(self.settings, application_name="blocker") as conn:
            conn.execute("LOCK TABLE dead_letters IN SHARE MODE")
            try:
                yield
            finally:
                conn.rollback()

    def in_thread(self, store: HotStore, batch: WriteBatch) -> Future[WriteResult]:
        return self.threads.submit(store.write, batch)


@pytest.fixture
def rig(pg_schema: Schema) -> Iterator[Rig]:
    rig = Rig(pg_schema)
    try:
        rig.a.migrate(timeout_s=30)
        rig.a.maintain(
            hot_window(datetime.now(UTC), retention_days=3, ahead_days=2),
            events_retention_days=90,
        )
        yield rig
    finally:
        rig.close()


@pytest.mark.parametrize("warm", [False, True], ids=["cold-marks", "warm-marks"])
@pytest.mark.parametrize("first_today", [False, True], ids=["yesterday-first", "today-first"])
def test_a_second_writer_of_the_same_seq_waits_for_the_first_and_stores_nothing(
    rig: Rig, first_today: bool, warm: bool
) -> None:
    first_day, second_day = (
        (rig.today, rig.yesterday) if first_today else (rig.yesterday, rig.today)
    )
    if warm:
        # B has stored the vehicle's earlier seqs: its mark (5) says seq 6 lies above it.
        assert rig.b.write(_batch(range(1, 6), first_day)).telemetry_rows == 5
    with rig.dead_letters_locked():
        first = rig.in_thread(rig.a, _batch([6], first_day, dead_letter=True))
        rig.wait_blocked("writer-a", on="dead_letters")
        second = rig.in_thread(rig.b, _batch([6], second_day))
        # B waits at its claim of the vehicle's key group, before it has looked at anything.
        rig.wait_blocked("writer-b", on="telemetry_key_group_writers")
        assert not second.done()
        assert rig.stored(6) == [], "nothing committed yet"
    a = first.result(timeout=30)
    b = second.result(timeout=30)
    assert (a.telemetry_rows, a.duplicates) == (1, 0)
    assert (b.telemetry_rows, b.duplicates) == (0, 1)
    assert b.taken_over_groups == 1, "A had the group last: B probed the vehicle afresh"
    assert rig.stored(6) == [(first_day,)], "stored once, the first committed copy"


def test_a_remembered_mark_is_forgotten_once_another_writer_stored_the_vehicle(rig: Rig) -> None:
    # B stores seqs 1-10 and remembers 10; A, the vehicle's next writer, stores 11-20.
    assert rig.b.write(_batch(range(1, 11), rig.yesterday)).telemetry_rows == 10
    assert rig.a.write(_batch(range(11, 21), rig.yesterday)).telemetry_rows == 10
    # B gets 11-20 again (another clock: another day): above its mark, yet stored already.
    again = rig.b.write(_batch(range(11, 21), rig.today))
    assert (again.telemetry_rows, again.duplicates, again.taken_over_groups) == (0, 10, 1)
    assert rig.sql(
        "SELECT count(*), count(DISTINCT seq), min(seq), max(seq) FROM telemetry "
        "WHERE vehicle_id = %s",
        VEHICLE_ID,
    ) == [(20, 20, 1, 20)]
    # Then B goes on with fresh seqs, and its marks serve again: the group stays B's.
    fresh = rig.b.write(_batch(range(21, 31), rig.today))
    assert (fresh.telemetry_rows, fresh.taken_over_groups) == (10, 0)
    group = KeyGroups().group(VEHICLE_ID)
    rows = rig.sql(
        "SELECT writer, generation FROM telemetry_key_group_writers WHERE key_group = %s", group
    )
    assert [(str(w).split("/")[0], g) for w, g in rows] == [("writer-b", 3)], (
        "B, then A, then B again"
    )


def test_writers_of_other_key_groups_do_not_wait_for_each_other(rig: Rig) -> None:
    groups = KeyGroups()
    other = next(
        v for v in range(2, 100) if groups.group(f"fleet-1-veh-{v:06d}") != groups.group(VEHICLE_ID)
    )
    with rig.dead_letters_locked():
        first = rig.in_thread(rig.a, _batch([1], rig.today, dead_letter=True))
        rig.wait_blocked("writer-a", on="dead_letters")
        # A holds its vehicle's group; B's vehicle is in another one: B commits meanwhile.
        b = rig.b.write(_batch([1], rig.today, vehicle=other))
        assert b.telemetry_rows == 1
        assert rig.stored(1, f"fleet-1-veh-{other:06d}") == [(rig.today,)]
        assert not first.done()
    assert first.result(timeout=30).telemetry_rows == 1
