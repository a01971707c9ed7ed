"""PNG charts of a load run: throughput over time, and latency over time.

Figures are made without pyplot, so nothing global (no backend, no display) is touched: saving
a figure as PNG renders it with matplotlib's Agg rasteriser.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from fleetpipe_loadtest.report import Bucket, LoadReport, rates


def throughput_chart(report: LoadReport, path: Path) -> Path:
    """Events per second sent, acknowledged and stored, and each stage's consumer lag."""
    fig = Figure(figsize=(10, 6), dpi=100)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    drawn = False
    # Rows stored per second come from the rows' own stored_time when the database gave them:
    # exact, where the sampled row count moves in steps.
    stored = [(b.t, float(b.count)) for b in report.stored_series]
    for name, label in (("sent", "sent"), ("acked", "acknowledged"), ("stored", "stored")):
        points = stored if name == "stored" and stored else rates(report.samples, name)
        if points:
            drawn = True
            top.plot([t for t, _ in points], [r for _, r in points], label=label, linewidth=1.2)
    top.set_ylabel("events/s")
    top.set_title("Throughput")
    top.grid(alpha=0.3)
    if drawn:
        top.legend(loc="upper left")
    stages = sorted({k for s in report.samples for k in s.lag})
    for stage in stages:
        bottom.plot(
            [s.t for s in report.samples],
            [s.lag.get(stage, 0) for s in report.samples],
            label=stage,
            linewidth=1.0,
        )
    bottom.set_ylabel("consumer lag (events; alerts for notification)")
    bottom.set_xlabel("seconds since the load started")
    bottom.grid(alpha=0.3)
    if stages:
        bottom.legend(loc="upper left", fontsize="small")
    return save_png(fig, path)


def latency_chart(report: LoadReport, path: Path) -> Path:
    """p50 and p99 per second of ingest → alert and ingest → stored, in milliseconds."""
    fig = Figure(figsize=(10, 4.5), dpi=100)
    ax = fig.subplots()
    _series(ax, report.alert_series, "ingest → alert")
    _series(ax, report.stored_series, "ingest → stored")
    ax.set_ylabel("milliseconds")
    ax.set_xlabel("seconds since the load started")
    ax.set_title("Latency per second (p50 solid, p99 dashed)")
    ax.grid(alpha=0.3)
    if report.alert_series or report.stored_series:
        ax.legend(loc="upper left")
    return save_png(fig, path)


def _series(ax: Axes, buckets: Sequence[Bucket], label: str) -> None:
    if not buckets:
        return
    xs = [b.t for b in buckets]
    (line,) = ax.plot(xs, [b.p50 for b in buckets], label=f"{label} p50", linewidth=1.2)
    ax.plot(
        xs,
        [b.p99 for b in buckets],
        linestyle="--",
        color=line.get_color(),
        label=f"{label} p99",
        linewidth=1.0,
    )


def save_png(fig: Figure, path: Path) -> Path:
    """Lay ``fig`` out and write it to ``path`` as PNG (Agg), making its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path


def write_charts(report: LoadReport, folder: Path, *, prefix: str = "") -> list[Path]:
    return [
        throughput_chart(report, folder / f"{prefix}throughput.png"),
        latency_chart(report, folder / f"{prefix}latency.png"),
    ]
