"""The pipeline's health from its services' metrics: rates, times, lag, dead letters. No I/O.

A figure is computed from two scrapes of one service, the newest and the oldest within the
window, as Prometheus' ``rate()`` would: the counter's increase over the time between them (a
counter that went down was reset by a restart, and counts from zero). A service that did not
answer is down, and has no figures at all — a down service never reads as idle.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fleetpipe.console.scrape import Scrape

# What flows in and out of each kind of service. Ingest counts the events it was sent; the
# storage writer's output is rows, not records.
EVENTS_IN = ("fleetpipe_ingest_events_total", "fleetpipe_records_consumed_total")
EVENTS_OUT = ("fleetpipe_records_produced_total", "fleetpipe_storage_rows_total")
# A service's processing time: ingest's time to acknowledge, the others' time per batch.
PROCESSING = ("fleetpipe_ingest_ack_seconds", "fleetpipe_batch_seconds")
DB_WRITE = "fleetpipe_storage_db_seconds"


def _first_total(scrape: Scrape, names: Iterable[str]) -> float | None:
    found = [t for t in (scrape.total(n) for n in names) if t is not None]
    return sum(found) if found else None


def _increase(new: float | None, old: float | None) -> float | None:
    """A counter's increase; ``None`` when the service has no such counter. A labelled counter
    appears with its first increment, so one absent from the older scrape counted from zero;
    one that went down was reset by a restart and counts from zero too."""
    if new is None:
        return None
    if old is None or new < old:
        return new
    return new - old


def _mean_ms(new: Scrape, old: Scrape, histogram: str) -> float | None:
    count = _increase(new.total(f"{histogram}_count"), old.total(f"{histogram}_count"))
    total = _increase(new.total(f"{histogram}_sum"), old.total(f"{histogram}_sum"))
    if not count or total is None:
        return None
    return 1000.0 * total / count


@dataclass(frozen=True)
class ServiceHealth:
    service: str
    up: bool
    at: float
    error: str = ""
    in_per_s: float | None = None
    out_per_s: float | None = None
    processing_ms: float | None = None  # mean over the window
    db_write_ms: float | None = None
    lag: dict[str, float] = field(default_factory=dict)  # "topic/partition" -> records
    deadletters: dict[str, float] = field(default_factory=dict)  # reason -> total
    twilio: dict[str, float] = field(default_factory=dict)  # "channel status" -> total

    @property
    def total_lag(self) -> float | None:
        return sum(self.lag.values()) if self.lag else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "up": self.up,
            "at": self.at,
            "error": self.error,
            "in_per_s": self.in_per_s,
            "out_per_s": self.out_per_s,
            "processing_ms": self.processing_ms,
            "db_write_ms": self.db_write_ms,
            "lag": self.lag,
            "total_lag": self.total_lag,
            "deadletters": self.deadletters,
            "twilio": self.twilio,
        }


def service_health(new: Scrape, old: Scrape | None) -> ServiceHealth:
    """One service's figures from its newest scrape and the oldest of the window."""
    if not new.up:
        return ServiceHealth(new.service, False, new.at, new.error)
    lag = {
        f"{topic}/{partition}": value
        for (topic, partition), value in sorted(
            new.by_label("fleetpipe_consumer_lag", "topic", "partition").items()
        )
    }
    deadletters = {
        reason: v for (reason,), v in new.by_label("fleetpipe_deadletters_total", "reason").items()
    }
    twilio = {
        f"{channel} {status}".strip(): v
        for (channel, status), v in new.by_label(
            "fleetpipe_notification_outcomes_total", "channel", "status"
        ).items()
    }
    rates: dict[str, float | None] = {"in": None, "out": None}
    processing = db = None
    if old is not None and old.up and new.at > old.at:
        seconds = new.at - old.at
        for key, names in (("in", EVENTS_IN), ("out", EVENTS_OUT)):
            grown = _increase(_first_total(new, names), _first_total(old, names))
            rates[key] = None if grown is None else grown / seconds
        processing = next(
            (m for m in (_mean_ms(new, old, h) for h in PROCESSING) if m is not None), None
        )
        db = _mean_ms(new, old, DB_WRITE)
    return ServiceHealth(
        new.service,
        True,
        new.at,
        in_per_s=rates["in"],
        out_per_s=rates["out"],
        processing_ms=processing,
        db_write_ms=db,
        lag=lag,
        deadletters=deadletters,
        twilio=twilio,
    )


@dataclass(frozen=True)
class Point:
    """One instant of the charts: each service's rate in and its total lag."""

    at: float
    in_per_s: dict[str, float | None]
    lag: dict[str, float | None]


class HealthHistory:
    """The scrapes of the last window, per service, and a point per read for the charts."""

    def __init__(self, *, window_s: float, points: int) -> None:
        self.window_s = window_s
        self._scrapes: dict[str, deque[Scrape]] = {}
        self.points: deque[Point] = deque(maxlen=points)
        self.latest: dict[str, ServiceHealth] = {}

    def add(self, scrapes: Mapping[str, Scrape]) -> dict[str, ServiceHealth]:
        now: dict[str, ServiceHealth] = {}
        for service, scrape in scrapes.items():
            kept = self._scrapes.setdefault(service, deque())
            kept.append(scrape)
            # Keep one scrape at or before the window's start, so the window is covered whole.
            while len(kept) > 2 and kept[1].at <= scrape.at - self.window_s:
                kept.popleft()
            oldest = next((s for s in kept if s.up and s is not scrape), None)
            now[service] = service_health(scrape, oldest)
        self.latest = now
        if now:
            at = max(h.at for h in now.values())
            self.points.append(
                Point(
                    at,
                    {s: h.in_per_s for s, h in now.items()},
                    {s: h.total_lag for s, h in now.items()},
                )
            )
        return now

    def as_dict(self) -> dict[str, Any]:
        return {
            "window_s": self.window_s,
            "services": [h.as_dict() for h in self.latest.values()],
            "history": [{"at": p.at, "in_per_s": p.in_per_s, "lag": p.lag} for p in self.points],
        }
