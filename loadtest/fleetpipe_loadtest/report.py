"""What a load run measured, and how it is written down: pure values in, text out.

A :class:`LoadReport` holds the counts (sent, acknowledged, rejected, stored, alerts by rule,
notifications), the seq accounting of what the database holds for the run's fleet, latency
percentiles, and the time series the charts draw. It renders itself as JSON and as a Markdown
summary; :mod:`fleetpipe_loadtest.charts` turns its series into PNG files.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from fleetpipe_loadtest.sendcounts import SendCounts

QUANTILES: tuple[float, ...] = (50.0, 90.0, 99.0, 99.9)


@dataclass(frozen=True)
class Step:
    """One step of a load profile: this many vehicles for this many seconds."""

    vehicles: int
    seconds: float


def parse_profile(spec: str) -> list[Step]:
    """``"50000:60,100000:60,50000:60"``: vehicles:seconds steps, run one after the other."""
    steps = []
    for part in spec.split(","):
        vehicles, sep, seconds = part.strip().partition(":")
        if not sep:
            raise ValueError(f"profile step {part!r}: expected vehicles:seconds, e.g. 5000:60")
        try:
            step = Step(int(vehicles), float(seconds))
        except ValueError:
            raise ValueError(
                f"profile step {part!r}: vehicles and seconds must be numbers"
            ) from None
        if not 1 <= step.vehicles <= 999_999 or not 0 < step.seconds <= 86_400:
            raise ValueError(f"profile step {part!r}: 1..999999 vehicles, 0..86400 seconds")
        steps.append(step)
    if not steps:
        raise ValueError("a profile needs at least one step")
    return steps


def percentiles(values: Sequence[float] | np.ndarray, qs: Iterable[float] = QUANTILES) -> Latency:
    """Linear-interpolated percentiles (numpy's default), with count, mean and max."""
    a = np.asarray(values, dtype=np.float64)
    qs = tuple(qs)
    if a.size == 0:
        return Latency(0, {}, math.nan, math.nan)
    found = np.percentile(a, qs)
    return Latency(
        int(a.size),
        {_qname(q): float(v) for q, v in zip(qs, found, strict=True)},
        float(a.mean()),
        float(a.max()),
    )


def _qname(q: float) -> str:
    return f"p{q:g}"


@dataclass(frozen=True)
class Latency:
    """Milliseconds: how many samples, the percentiles by name (``p50``, ``p99``), mean, max."""

    count: int
    quantiles: Mapping[str, float]
    mean: float
    max: float

    def get(self, name: str) -> float:
        return self.quantiles.get(name, math.nan)

    def brief(self) -> str:
        """``p50 84 ms, p90 157 ms, p99 167 ms, max 170 ms (44 samples)``."""
        named = ", ".join(f"{q} {_ms(self.get(q), 0)} ms" for q in ("p50", "p90", "p99"))
        return f"{named}, max {_ms(self.max, 0)} ms ({self.count:,} samples)"

    def as_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            **{k: _finite(v) for k, v in self.quantiles.items()},
            "mean": _finite(self.mean),
            "max": _finite(self.max),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Latency:
        qs = {k: float(v) for k, v in d.items() if k.startswith("p") and v is not None}
        return cls(int(d.get("count", 0)), qs, _num(d.get("mean")), _num(d.get("max")))


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _num(x: Any) -> float:
    return math.nan if x is None else float(x)


@dataclass(frozen=True)
class Bucket:
    """One interval of a latency series: its start (seconds into the run) and its figures."""

    t: float
    count: int
    p50: float
    p99: float


def latency_series(
    times_s: Sequence[float], values_ms: Sequence[float], *, width_s: float = 1.0
) -> list[Bucket]:
    """Samples grouped by ``width_s`` intervals of their time, each with p50 and p99."""
    t = np.asarray(times_s, dtype=np.float64)
    v = np.asarray(values_ms, dtype=np.float64)
    if t.size == 0:
        return []
    keys = np.floor(t / width_s).astype(np.int64)
    order = np.argsort(keys, kind="stable")
    keys, v = keys[order], v[order]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    ends = np.r_[starts[1:], keys.size]
    out = []
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        p50, p99 = np.percentile(v[s:e], (50, 99))
        out.append(Bucket(float(keys[s] * width_s), e - s, float(p50), float(p99)))
    return out


@dataclass(frozen=True)
class Sample:
    """The pipeline's state once a second: cumulative counts and the lag of each stage."""

    t: float  # seconds since the load started
    sent: int
    acked: int
    stored: int  # rows of the run in the database
    alerts: int
    notifications: int
    # Consumer group lag per service: events on the telemetry topics (whose records are packs),
    # records elsewhere; markers of transactions not yet read past are counted too.
    lag: Mapping[str, int]


def rates(
    samples: Sequence[Sample], name: str, *, min_dt: float = 0.5
) -> list[tuple[float, float]]:
    """Per-second rate of a cumulative counter (``sent``, ``acked``, ``stored``) between samples.

    Samples closer than ``min_dt`` are merged into the next interval: two samples taken in quick
    succession after a slow one would otherwise show a burst that never happened.
    """
    out = []
    last: Sample | None = None
    for s in samples:
        if last is None:
            last = s
            continue
        dt = s.t - last.t
        if dt >= min_dt:
            out.append((s.t, (getattr(s, name) - getattr(last, name)) / dt))
            last = s
    return out


@dataclass(frozen=True)
class SeqAccount:
    """What the database holds for the run's fleet, against what the load sent, per vehicle."""

    vehicles: int  # vehicles that sent anything
    expected: int  # events acknowledged as accepted (sent minus rejected)
    stored: int  # distinct (vehicle, seq) rows
    rows: int  # every row: more than ``stored`` only if a (vehicle, seq) is stored twice
    missing: int  # sent, acknowledged, not stored
    unexpected: int  # stored but never sent by this run

    @property
    def duplicates(self) -> int:
        return self.rows - self.stored

    @property
    def exact(self) -> bool:
        return self.missing == 0 and self.duplicates == 0 and self.unexpected == 0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "duplicates": self.duplicates, "exact": self.exact}


def account(
    sent: Mapping[str, int],
    stored: Mapping[str, tuple[int, int]],
    *,
    rejected: int = 0,
) -> SeqAccount:
    """Compare per-vehicle sent counts with per-vehicle (rows, distinct seqs) in the database.

    Each vehicle's events are counted when handed to ingest; ``rejected`` (from the acks,
    not attributed to vehicles) is subtracted from the expected total. The simulator's events
    are valid, so a non-zero ``rejected`` is itself a finding.
    """
    missing = unexpected = rows = distinct = 0
    for vid, n in sent.items():
        r, d = stored.get(vid, (0, 0))
        missing += max(0, n - d)
        unexpected += max(0, d - n)
        rows += r
        distinct += d
    for vid, (r, d) in stored.items():
        if vid not in sent:
            unexpected += d
            rows += r
            distinct += d
    total = sum(sent.values())
    return SeqAccount(
        vehicles=sum(1 for n in sent.values() if n),
        expected=total - rejected,
        stored=distinct,
        rows=rows,
        missing=max(0, missing - rejected),
        unexpected=unexpected,
    )


@dataclass
class LoadReport(SendCounts):
    """Everything a load run measured. ``as_dict`` is the JSON report."""

    command: str
    started_utc: str
    machine: Mapping[str, str]
    plan: Mapping[str, Any]
    wall_s: float = 0.0
    # Seconds the senders took to send their ticks (from the first tick to the end of the last
    # one's period), the longest of the worker processes: the sent rate's denominator.
    load_s: float = 0.0
    load_end_t: float = 0.0  # the last sample of the load phase (``Sample.t``)
    behind_s: float = 0.0  # how far the simulator fell behind real time, at worst
    interrupted: bool = False
    seq: SeqAccount | None = None
    alerts_by_rule: dict[str, dict[str, int]] = field(default_factory=dict)
    injected_by_kind: dict[str, int] = field(default_factory=dict)
    # Per scenario kind: how long each injected episode's ground-truth predicate held, in s.
    held_s: dict[str, list[float]] = field(default_factory=dict)
    notifications_by_status: dict[str, int] = field(default_factory=dict)
    provider: dict[str, int] = field(default_factory=dict)  # what the Twilio side recorded
    alert_latency_ms: Latency | None = None
    stored_latency_ms: Latency | None = None
    ack_latency_ms: Latency | None = None
    samples: list[Sample] = field(default_factory=list)
    alert_series: list[Bucket] = field(default_factory=list)
    stored_series: list[Bucket] = field(default_factory=list)
    where: dict[str, str] = field(default_factory=dict)
    processes: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def alerts_opened(self) -> int:
        return sum(s.get("OPEN", 0) for s in self.alerts_by_rule.values())

    @property
    def notifications_sent(self) -> int:
        return self.notifications_by_status.get("SENT", 0)

    def latencies(self, *, client: bool = True) -> list[tuple[str, Latency]]:
        """The latencies that have samples, labelled; ``client`` adds the sender's ack time."""
        named = [
            ("ingest → alert", self.alert_latency_ms),
            ("ingest → stored", self.stored_latency_ms),
        ]
        if client:
            named.append(("batch acknowledged (client)", self.ack_latency_ms))
        return [(label, lat) for label, lat in named if lat is not None and lat.count]

    def sent_rate(self) -> float:
        return self.sent / self.load_s if self.load_s else 0.0

    def as_dict(self) -> dict[str, Any]:
        def lat(x: Latency | None) -> dict[str, Any] | None:
            return x.as_dict() if x is not None else None

        return {
            "command": self.command,
            "started_utc": self.started_utc,
            "machine": dict(self.machine),
            "plan": dict(self.plan),
            "wall_s": self.wall_s,
            "load_s": self.load_s,
            "load_end_t": self.load_end_t,
            "events": {
                "sent": self.sent,
                "acknowledged": self.acked,
                "accepted": self.accepted,
                "rejected": self.rejected,
                "late": self.late,
                "reconnects": self.reconnects,
                "resent_batches": self.resent_batches,
                "sent_per_s": self.sent_rate(),
            },
            "behind_s": self.behind_s,
            "interrupted": self.interrupted,
            "stored": self.seq.as_dict() if self.seq is not None else None,
            "alerts_by_rule": self.alerts_by_rule,
            "injected_by_kind": self.injected_by_kind,
            "notifications_by_status": self.notifications_by_status,
            "provider": self.provider,
            "latency_ms": {
                "ingest_to_alert": lat(self.alert_latency_ms),
                "ingest_to_stored": lat(self.stored_latency_ms),
                "ack": lat(self.ack_latency_ms),
            },
            "samples": [asdict(s) for s in self.samples],
            "alert_latency_series": [asdict(b) for b in self.alert_series],
            "stored_latency_series": [asdict(b) for b in self.stored_series],
            "where": self.where,
            "processes": self.processes,
            "notes": self.notes,
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2, allow_nan=False, default=_jsonable) + "\n"

    def markdown(self, *, title: str = "Load run", charts: Sequence[str] = ()) -> str:
        md = [f"# {title}", "", f"Started {self.started_utc} UTC with `{self.command}`.", ""]
        md += ["| plan | |", "| --- | --- |"]
        md += [f"| {k} | {v} |" for k, v in self.plan.items()]
        md += ["", "| events | |", "| --- | ---: |"]
        md += [
            f"| sent | {self.sent:,} |",
            f"| acknowledged | {self.acked:,} |",
            f"| accepted | {self.accepted:,} |",
            f"| rejected | {self.rejected:,} |",
            f"| late (accepted, flagged) | {self.late:,} |",
            f"| sent per second (mean over {self.load_s:.0f} s) | {self.sent_rate():,.0f} |",
            f"| simulator behind real time, at worst | {self.behind_s:.1f} s |",
        ]
        if self.seq is not None:
            s = self.seq
            md += [
                "",
                "| stored (seq accounting per vehicle) | |",
                "| --- | ---: |",
                f"| vehicles | {s.vehicles:,} |",
                f"| expected (accepted) | {s.expected:,} |",
                f"| stored, distinct (vehicle, seq) | {s.stored:,} |",
                f"| missing | {s.missing:,} |",
                f"| duplicates | {s.duplicates:,} |",
                f"| stored but not sent | {s.unexpected:,} |",
                f"| exactly once | {'yes' if s.exact else '**no**'} |",
            ]
        md += ["", "| latency (ms) | samples | p50 | p90 | p99 | p99.9 | max |"]
        md += ["| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for label, lat in self.latencies():
            md.append(
                f"| {label} | {lat.count:,} | {_ms(lat.get('p50'))} | {_ms(lat.get('p90'))} | "
                f"{_ms(lat.get('p99'))} | {_ms(lat.get('p99.9'))} | {_ms(lat.max)} |"
            )
        if self.alerts_by_rule:
            md += ["", "| alerts by rule | OPEN | UPDATE | RESOLVED | injected episodes |"]
            md += ["| --- | ---: | ---: | ---: | ---: |"]
            for rule, states in sorted(self.alerts_by_rule.items()):
                md.append(
                    f"| {rule} | {states.get('OPEN', 0):,} | {states.get('UPDATE', 0):,} | "
                    f"{states.get('RESOLVED', 0):,} | {self.injected_by_kind.get(rule, 0):,} |"
                )
        if self.notifications_by_status or self.provider:
            md += ["", "| notifications | |", "| --- | ---: |"]
            md += [f"| {k} | {v:,} |" for k, v in sorted(self.notifications_by_status.items())]
            md += [f"| provider: {k} | {v:,} |" for k, v in sorted(self.provider.items())]
        for chart in charts:
            md += ["", f"![{chart}]({chart})"]
        if self.notes:
            md += ["", *[f"- {n}" for n in self.notes]]
        if self.machine:
            md += ["", "Machine: " + ", ".join(f"{k} {v}" for k, v in self.machine.items())]
        return "\n".join(md) + "\n"


def _ms(x: float, digits: int = 1) -> str:
    return f"{x:,.{digits}f}" if math.isfinite(x) else "-"


def _jsonable(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    raise TypeError(f"{type(x).__name__} is not JSON serialisable")
