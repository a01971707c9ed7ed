"""How long each lake layer keeps its partitions, and the sweep that drops the expired ones.

A partition expires when all of it is older than its layer's retention: an hour partition
(bronze, silver) when its hour has ended before the cut-off, a day partition (gold) when its
day has. Whole files only: a partition's files are deleted, and each deletion is logged. A
day's compaction manifest goes with the day's last silver hour, so a late bronze file for a
day whose silver has expired starts that day afresh.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from fleetpipe.lake import layout
from fleetpipe.lake.store import LakeStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LakeRetention:
    """Days each layer keeps (the reference keeps raw 90 days, cleaned 2 years, aggregates
    5 years)."""

    bronze_days: float = 90.0
    silver_days: float = 730.0
    gold_days: float = 1825.0


@dataclass
class Expired:
    files: list[str] = field(default_factory=list)

    def layer(self, name: str) -> list[str]:
        return [f for f in self.files if f.startswith(f"{name}/")]


def _hour_end(path_in_table: str) -> datetime | None:
    where = layout.day_and_hour(path_in_table)
    if where is None:
        return None
    start = datetime.fromisoformat(f"{where[0]}T{where[1]}:00:00+00:00")
    return start + timedelta(hours=1)


def _day_end(path_in_table: str) -> datetime | None:
    if not path_in_table.startswith("dt="):
        return None
    try:
        day = date.fromisoformat(path_in_table[3:13])
    except ValueError:
        return None
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)


def expire(store: LakeStore, retention: LakeRetention, *, now: datetime) -> Expired:
    """Delete every file of every expired partition; returns what was deleted."""
    expired = Expired()
    layers = (
        (layout.BRONZE, retention.bronze_days, _hour_end),
        (layout.SILVER, retention.silver_days, _hour_end),
        (layout.GOLD, retention.gold_days, _day_end),
    )
    for layer, days, end_of in layers:
        cutoff = now - timedelta(days=days)
        for path, _ in store.files(layer):
            _layer, _table, rest = path.split("/", 2)
            ends = end_of(rest)
            if ends is not None and ends <= cutoff:
                store.delete(path)
                expired.files.append(path)
                log.info("retention: dropped %s (%s kept %g days)", path, layer, days)
    # A manifest describes silver; once none of its day's silver is left, it goes too.
    silver_days = {
        p.split("/")[2].removeprefix("dt=") for p, _ in store.files(f"{layout.SILVER}/telemetry")
    }
    for path, _ in store.files(layout.MANIFESTS, suffix=".json"):
        day = path.rsplit("/", 1)[1].removeprefix("dt=").removesuffix(".json")
        if day not in silver_days and any(
            f.startswith(f"{layout.SILVER}/telemetry/dt={day}/") for f in expired.files
        ):
            store.delete(path)
            expired.files.append(path)
    return expired
