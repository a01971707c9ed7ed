"""The pipeline report: its verdicts, and the hand-written reading it keeps when written again."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from fleetpipe_dev.bench.pipeline import READING, RateResult, _kept_reading
from fleetpipe_loadtest.report import LoadReport, Sample

pytestmark = pytest.mark.unit


def test_the_reading_survives_and_the_generated_part_does_not(tmp_path: Path) -> None:
    report = tmp_path / "pipeline.md"
    assert _kept_reading(report) == "", "no report yet"
    report.write_text("# old generated figures\n\n| 1 |\n")
    assert _kept_reading(report) == "", "a report without a reading"
    reading = f"{READING}\n\n- what the figures mean\n"
    report.write_text("# old generated figures\n\n| 1 |\n\n" + reading)
    kept = _kept_reading(report)
    assert kept.strip() == reading.strip()
    assert "old generated" not in kept


def _result(lag_at: Callable[[float], int], *, rate: int = 1000) -> RateResult:
    samples = [
        Sample(
            t=float(t),
            sent=0,
            acked=0,
            stored=0,
            alerts=0,
            notifications=0,
            lag={"detection": lag_at(t), "enrichment": 10},
        )
        for t in range(61)
    ]
    report = LoadReport(
        command="x", started_utc="", machine={}, plan={}, load_end_t=60.0, samples=samples
    )
    return RateResult(rate=rate, report=report)


def test_a_stage_keeps_up_only_if_it_is_not_behind_at_the_end_either() -> None:
    steady = _result(lambda t: 500)
    assert steady.verdicts["kept up"]
    assert steady.end_lag == {"detection": 500, "enrichment": 10}
    # Behind by 10 s of input over the last 10 s of the load: the second half's median
    # does not see it, the end does.
    late = _result(lambda t: 10_000 if t >= 50 else 500)
    assert late.late_lag["detection"][0] == 500
    assert late.end_lag["detection"] == 10_000
    assert not late.verdicts["kept up"]
    # A burst in the middle that was worked off is not a backlog.
    burst = _result(lambda t: 10_000 if 30 <= t < 36 else 500)
    assert burst.verdicts["kept up"]
