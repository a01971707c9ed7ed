"""How long each lake layer keeps its partitions, and the sweep that drops the expired ones.

A partition expires when all of it is older than its layer's retention: an hour partition
(bronze, silver) when its hour has ended before the cut-off, a day partition (gold) when its
day has. Whole files only: a partition's files are deleted, and each deletion is logged. A
day's compaction manifest goes with the day's last silver hour, so a late bronze file for a
day whose silver has expired starts that day afresh. Silver's key index loses the keys of the
expired hours (see :mod:`fleetpipe.lake.keys`): a copy of them that comes later is kept.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc

from fleetpipe.lake import keys, layout
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
    # Days whose silver key index lost the keys of expired hours.
    index_days: list[str] = field(default_factory=list)

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
    _drop_expired_keys(store, expired)
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


def _drop_expired_keys(store: LakeStore, expired: Expired) -> None:
    """Each day's key index without the hours whose silver expired."""
    prefix = f"{layout.SILVER}/{keys.TELEMETRY}/"
    days = sorted(
        {
            where[0]
            for f in expired.files
            if f.startswith(prefix) and (where := layout.day_and_hour(f.removeprefix(prefix)))
        }
    )
    for day in days:
        index = keys.read_day(store, day)
        if index is None:
            continue
        left = [
            where[1]
            for p, _ in store.files(f"{prefix}dt={day}")
            if (where := layout.day_and_hour(p.removeprefix(prefix))) is not None
        ]
        kept = index.filter(pc.is_in(index["hour"], pa.array(left, pa.string())))
        keys.write_day(store, day, kept)
        expired.index_days.append(day)
        log.info(
            "retention: %d key(s) of %s left silver's key index",
            index.num_rows - kept.num_rows,
            day,
        )
