"""PNG charts of a load run: written, valid PNG, whatever the series hold."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetpipe_loadtest.charts import write_charts
from fleetpipe_loadtest.report import LoadReport, Sample, latency_series
from support.images import png_size

pytestmark = pytest.mark.unit


def _report(points: int) -> LoadReport:
    report = LoadReport("cmd", "now", {}, {})
    report.samples = [
        Sample(float(t), 1000 * t, 990 * t, 950 * t, t, t, {"enrichment": 10, "detection": 3})
        for t in range(points)
    ]
    report.alert_series = latency_series([0.5 * t for t in range(points)], [20.0] * points)
    report.stored_series = latency_series([0.5 * t for t in range(points)], [300.0] * points)
    return report


@pytest.mark.parametrize("points", [pytest.param(0, id="empty"), pytest.param(60, id="a-minute")])
def test_throughput_and_latency_charts_are_valid_png_files(tmp_path: Path, points: int) -> None:
    paths = write_charts(_report(points), tmp_path / "charts", prefix="run-")
    assert [p.name for p in paths] == ["run-throughput.png", "run-latency.png"]
    for path in paths:
        width, height = png_size(path)
        assert width >= 600 and height >= 300
