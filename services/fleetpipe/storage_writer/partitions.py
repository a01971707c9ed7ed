"""Daily telemetry partitions: which exist, which to create ahead, which are past retention.

Pure: dates in, dates out. A partition holds one UTC day of event_time. The hot window is
``[first, last]``: ``first`` is the day that contains ``now - retention`` (so at least the
retention's worth of data is always kept), ``last`` is ``ahead_days`` after today. Partitions
before ``first`` are dropped; rows for days outside the window are not stored hot (they are
past retention already, or carry a clock far in the future) and are counted instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

PREFIX = "telemetry_p"
NAME_RE = re.compile(rf"^{PREFIX}(\d{{8}})$")


def partition_name(day: date) -> str:
    return f"{PREFIX}{day:%Y%m%d}"


def partition_day(name: str) -> date | None:
    match = NAME_RE.match(name)
    if match is None:
        return None
    return datetime.strptime(match.group(1), "%Y%m%d").date()


@dataclass(frozen=True)
class HotWindow:
    first: date
    last: date

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.first <= day <= self.last

    def days(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range((self.last - self.first).days + 1)]


def hot_window(now: datetime, *, retention_days: float, ahead_days: int) -> HotWindow:
    first = (now - timedelta(days=retention_days)).date()
    return HotWindow(first, now.date() + timedelta(days=ahead_days))


@dataclass(frozen=True)
class PartitionPlan:
    create: list[date]
    drop: list[date]


def plan_partitions(existing: set[date], window: HotWindow) -> PartitionPlan:
    return PartitionPlan(
        create=[d for d in window.days() if d not in existing],
        drop=sorted(d for d in existing if d < window.first),
    )
