"""Each lake layer keeps its partitions for its own time: with the clock advanced, exactly the
expired partitions' files are gone, in every layer, and nothing else."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from fleetpipe.lake.compaction import Compactor
from fleetpipe.lake.retention import LakeRetention, expire
from fleetpipe.lake.store import LakeStore
from support.lakes import LakeLocations, events, write_bronze

pytestmark = pytest.mark.integration

DAY_US = 86_400_000_000
HOUR_US = 3_600_000_000
T0 = 1_736_899_200_000_000  # 2025-01-15 00:00 UTC


def _days(paths: list[str], *days: int) -> set[str]:
    return {p for p in paths if any(f"dt=2025-01-{d}" in p for d in days)}


def test_with_the_clock_advanced_exactly_the_expired_partitions_are_dropped(
    lake_locations: LakeLocations, tmp_path: Path
) -> None:
    store = LakeStore.from_url(lake_locations.new(), fsync=False)
    for day in range(4):  # 15 to 18 January, each day across 10:00
        made = events(
            3, 20, start_us=T0 + day * DAY_US + 10 * HOUR_US - 10_000_000, seq_after=day * 20
        )
        write_bronze(store, tmp_path / "spool", made, first_offset=day * 100)
    Compactor(store).run()
    before = [p for p, _ in store.files("")]
    manifests = [p for p, _ in store.files("_compaction", suffix=".json")]
    assert len(manifests) == 4

    # 20 January 10:30: bronze keeps 2 days, silver 3, gold 4.
    now = datetime(2025, 1, 20, 10, 30, tzinfo=UTC)
    expired = expire(store, LakeRetention(2, 3, 4), now=now)

    bronze = [p for p in before if p.startswith("bronze/")]
    silver = [p for p in before if p.startswith("silver/")]
    gold = [p for p in before if p.startswith("gold/")]
    # Bronze ended before 18 January 10:30: the 15th to the 17th and the 18th's 09:00 hour (its
    # 10:00 hour has not ended by then). Silver before the 17th 10:30: the 15th, the 16th and
    # the 17th's 09:00 hour. Gold ended before the 16th 10:30 (whole days only): the 15th.
    expected = (
        _days(bronze, 15, 16, 17)
        | {p for p in bronze if "dt=2025-01-18/hour=09" in p}
        | _days(silver, 15, 16)
        | {p for p in silver if "dt=2025-01-17/hour=09" in p}
        | _days(gold, 15)
    )
    assert (
        set(expired.layer("bronze")) | set(expired.layer("silver")) | set(expired.layer("gold"))
        == expected
    )
    assert [p for p, _ in store.files("")] == sorted(set(before) - expected), "nothing else"
    assert {p for p in expired.files if p.startswith("_compaction/")} == {
        "_compaction/telemetry/dt=2025-01-15.json",
        "_compaction/telemetry/dt=2025-01-16.json",
    }, "a day's manifest goes with its last silver"
    assert expire(store, LakeRetention(2, 3, 4), now=now).files == [], "a second sweep: none"
