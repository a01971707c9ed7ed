"""The pipeline report keeps its hand-written reading when the benchmark writes it again."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetpipe_loadtest.pipeline_bench import READING, _kept_reading

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
