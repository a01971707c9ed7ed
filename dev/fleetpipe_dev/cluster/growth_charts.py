"""PNG charts of a growth run in pods: rows stored per second, lag per consumer group, and
replicas per service with the topics' partitions, over time, each with the patches marked.

Drawn as the load test's charts are (``fleetpipe_loadtest.charts``): figures without pyplot, so
no backend or display is touched; saving as PNG renders with matplotlib's Agg rasteriser.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from fleetpipe_dev.cluster.growth_report import SMOOTH_S, GrowthRun, rates
from fleetpipe_loadtest.charts import save_png


def rate_chart(run: GrowthRun, path: Path) -> Path:
    """Rows stored per second between samples (thin) and over ``SMOOTH_S`` (bold), and the
    records appended to the ingest topic per second."""
    fig = Figure(figsize=(11, 4.5), dpi=100)
    ax = fig.subplots()
    smooth = rates(run.samples, "stored", window_s=SMOOTH_S)
    raw = rates(run.samples, "stored")
    ingested = rates(run.samples, "ingested", window_s=SMOOTH_S)
    (line,) = ax.plot(
        [t / 60 for t, _ in smooth], [r for _, r in smooth], lw=1.8,
        label=f"rows stored/s over {SMOOTH_S:.0f} s",
    )  # fmt: skip
    ax.plot(
        [t / 60 for t, _ in raw], [r for _, r in raw], lw=0.7, alpha=0.5, color=line.get_color(),
        label="rows stored/s between samples",
    )  # fmt: skip
    ax.plot(
        [t / 60 for t, _ in ingested], [r for _, r in ingested], lw=1.0, linestyle="--",
        label=f"ingest topic records/s over {SMOOTH_S:.0f} s",
    )  # fmt: skip
    drawn = bool(smooth or raw or ingested)
    ax.set_ylabel("per second")
    ax.set_ylim(bottom=0)
    ax.set_title("Rate")
    _finish(ax, run, legend=drawn)
    return save_png(fig, path)


def lag_chart(run: GrowthRun, path: Path) -> Path:
    """Each consumer group's lag: records on its input topics not committed yet."""
    fig = Figure(figsize=(11, 4.5), dpi=100)
    ax = fig.subplots()
    groups = sorted({g for s in run.samples for g in s.lag})
    for group in groups:
        points = [(s.t / 60, s.lag[group]) for s in run.samples if group in s.lag]
        ax.plot([t for t, _ in points], [v for _, v in points], label=group, lw=1.0)
    ax.set_ylabel("records behind (a record packs one event or more)")
    ax.set_ylim(bottom=0)
    ax.set_title("Consumer lag per group")
    _finish(ax, run, legend=bool(groups))
    return save_png(fig, path)


def replicas_chart(run: GrowthRun, path: Path) -> Path:
    """Desired (solid) and Ready (dashed) replicas per service; partitions below, with the
    spans where the FleetPipeline was not Ready shaded."""
    fig = Figure(figsize=(11, 6.5), dpi=100)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    minutes = [s.t / 60 for s in run.samples]
    services = sorted({k for s in run.samples for k in s.desired})
    for service in services:
        (line,) = top.step(
            minutes, [s.desired.get(service, 0) for s in run.samples], where="post",
            label=service, lw=1.2,
        )  # fmt: skip
        top.step(
            minutes, [s.ready.get(service, 0) for s in run.samples], where="post",
            linestyle="--", color=line.get_color(), lw=0.9,
        )  # fmt: skip
    top.set_ylabel("replicas (ready dashed)")
    top.set_title("Replicas per service and partitions")
    # Replicas are whole; the services often ask for the same number, their lines then overlap.
    top.yaxis.set_major_locator(MaxNLocator(integer=True))
    top.set_ylim(
        bottom=0, top=max((max(s.desired.values(), default=0) for s in run.samples), default=0) + 1
    )
    _marks(top, run)
    top.grid(alpha=0.3)
    if services:
        _legend(top)
    bottom.step(
        minutes, [s.partitions or 0 for s in run.samples], where="post",
        label="partitions", color="black", lw=1.2,
    )  # fmt: skip
    for start, end in _not_ready_spans(run):
        bottom.axvspan(start, end, color="tab:red", alpha=0.15, lw=0)
    bottom.set_ylabel("partitions (not Ready shaded)")
    bottom.set_ylim(bottom=0)
    _finish(bottom, run, legend=False)
    return save_png(fig, path)


def _not_ready_spans(run: GrowthRun) -> list[tuple[float, float]]:
    spans: list[tuple[float, float]] = []
    start: float | None = None
    for s in run.samples:
        if not s.pipeline_ready and start is None:
            start = s.t / 60
        elif s.pipeline_ready and start is not None:
            spans.append((start, s.t / 60))
            start = None
    if start is not None and run.samples:
        spans.append((start, run.samples[-1].t / 60))
    return spans


def _marks(ax: Axes, run: GrowthRun) -> None:
    """A vertical line at each patch, named at the top of the axes."""
    for patch in run.patches:
        x = patch.at_s / 60
        ax.axvline(x, color="grey", linestyle=":", lw=1.0)
        ax.annotate(
            f"{patch.name} → {patch.vehicles_to:,}", (x, 1.0), xycoords=("data", "axes fraction"),
            xytext=(3, -12), textcoords="offset points", fontsize="small", color="dimgrey",
        )  # fmt: skip


def _finish(ax: Axes, run: GrowthRun, *, legend: bool) -> None:
    _marks(ax, run)
    ax.set_xlabel("minutes since the load Job started")
    ax.grid(alpha=0.3)
    if legend:
        _legend(ax)


def _legend(ax: Axes) -> None:
    # Beside the axes: inside, it would hide the patches' names and the lines at the top.
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", borderaxespad=0)


def write_charts(run: GrowthRun, folder: Path, *, prefix: str = "") -> list[Path]:
    return [
        rate_chart(run, folder / f"{prefix}rate.png"),
        lag_chart(run, folder / f"{prefix}lag.png"),
        replicas_chart(run, folder / f"{prefix}replicas.png"),
    ]
