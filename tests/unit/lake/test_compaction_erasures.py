"""The compaction against an audit that gains an erasure while a day is built (a hand-written
audit; the real one in PostgreSQL is the integration drill's): the day is built again without
the subject, and a compaction without an audit is unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetpipe.lake import layout
from fleetpipe.lake.compaction import Compactor, HoldAt
from fleetpipe.lake.erased import ErasedSubject
from fleetpipe.lake.store import LakeStore
from support.lakes import events, write_bronze

pytestmark = pytest.mark.unit

T0 = 1_736_899_200_000_000  # 2025-01-15 00:00 UTC
HOUR_US = 3_600_000_000
NOW_US = 1_765_000_000_000_000


class GrowingAudit:
    """Answers nothing until ``erase()``; then the erasure, as the audit would."""

    def __init__(self) -> None:
        self.erased: list[ErasedSubject] = []
        self.asked = 0

    def erase(self, kind: str, subject: str) -> None:
        self.erased.append(ErasedSubject(len(self.erased) + 1, kind, subject, NOW_US))

    def recorded_after(self, erasure_id: int) -> list[ErasedSubject]:
        self.asked += 1
        return [e for e in self.erased if e.erasure_id > erasure_id]


def _silver_vehicles(store: LakeStore) -> set[str]:
    files = [p for p, _ in store.files("silver/telemetry")]
    return set(store.dataset(files).to_table(columns=["vehicle_id"])["vehicle_id"].to_pylist())


@pytest.mark.parametrize("hold_at", [HoldAt.SILVER, HoldAt.GOLD], ids=["silver", "gold"])
def test_an_erasure_recorded_mid_day_has_the_day_built_again_without_it(
    tmp_path: Path, hold_at: HoldAt
) -> None:
    store = LakeStore.from_url(tmp_path / "lake", fsync=False)
    made = events(3, 10, start_us=T0 + 9 * HOUR_US)
    vehicles = sorted({e.telemetry.vehicle_id for e in made})
    write_bronze(store, tmp_path / "spool", made)
    audit = GrowingAudit()

    def hold(_seconds: float) -> None:
        if not audit.erased:
            audit.erase("vehicle", vehicles[0])

    report = Compactor(store, hold_s=1.0, hold_at=hold_at, sleep=hold, erasures=audit).run()

    (day,) = report.compacted
    assert day.rebuilt_for_erasures == 1 and day.silver_rows == 20 and day.duplicates == 0
    assert _silver_vehicles(store) == set(vehicles[1:])
    vehicle_hour = store.read_table(layout.gold_day("vehicle_hour", "2025-01-15"))
    assert set(vehicle_hour["vehicle_id"].to_pylist()) == set(vehicles[1:])


def test_a_drivers_erasure_on_record_keeps_their_rows_out_from_the_start(tmp_path: Path) -> None:
    store = LakeStore.from_url(tmp_path / "lake", fsync=False)
    made = events(3, 10, start_us=T0 + 9 * HOUR_US)
    write_bronze(store, tmp_path / "spool", made)
    audit = GrowingAudit()
    audit.erase("driver", made[1].vehicle.driver_id)

    (day,) = Compactor(store, erasures=audit).run().compacted

    assert (day.silver_rows, day.rebuilt_for_erasures) == (20, 0)
    assert made[1].telemetry.vehicle_id not in _silver_vehicles(store)


def test_without_an_audit_nothing_is_left_out(tmp_path: Path) -> None:
    store = LakeStore.from_url(tmp_path / "lake", fsync=False)
    write_bronze(store, tmp_path / "spool", events(3, 10, start_us=T0 + 9 * HOUR_US))
    (day,) = Compactor(store).run().compacted
    assert day.silver_rows == 30
