"""A benchmark's shared set-up: topic names, the log folder, and the report's frame."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest
from rich.console import Console

from fleetpipe.core.kafka import build_admin
from fleetpipe.core.settings import KafkaSettings
from fleetpipe_dev.bench.harness import RunResult, Summary, versus
from fleetpipe_dev.bench.session import BenchSession
from fleetpipe_dev.stack.devstack import DevStack, DevStackSettings

pytestmark = pytest.mark.unit


@pytest.fixture
def session(tmp_path: Path) -> BenchSession:
    # Nothing here starts or connects: the stack only reads its state file, the admin client
    # connects on first use, and these tests use neither.
    return BenchSession(
        stack=DevStack(DevStackSettings(home=tmp_path / "dev")),
        report=tmp_path / "reports" / "bench.md",
        console=Console(file=io.StringIO(), width=200),
        suffix="bench1700000000",
        admin=build_admin(KafkaSettings()),
    )


def test_topics_carry_the_session_suffix_then_the_parts(session: BenchSession) -> None:
    assert session.topics().raw == "fleet.telemetry.raw.v1.bench1700000000"
    assert session.topics("r1", "s2").alerts == "fleet.alerts.v1.bench1700000000.r1.s2"


def test_logs_go_beside_the_report(session: BenchSession) -> None:
    folder = session.logs("stages")
    assert folder == session.report.parent / "logs" / "stages" and folder.is_dir()


def test_the_report_says_when_and_with_what_command_it_was_measured(
    session: BenchSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "argv", ["fleetpipe", "bench", "baseline", "--runs", "3"])
    result = RunResult("passthrough", events=1000, wall_s=2.0, cpu_s=0.5)
    md = [*session.heading("Baseline B"), "body", ""]
    assert md[0] == "# Baseline B"
    assert md[2].startswith("Measured ") and md[2].endswith(
        "UTC with `fleetpipe bench baseline --runs 3`."
    )
    session.write_report(md, {"passthrough": [result]}, fields={"events": 1000})
    text = session.report.read_text()
    assert "body" in text and "- passthrough: 500/s 500.0 µs" in text
    data = json.loads(session.report.with_suffix(".json").read_text())
    assert data["command"] == "fleetpipe bench baseline --runs 3" and data["events"] == 1000
    assert data["runs"]["passthrough"][0]["events_per_s"] == 500.0
    session.finish([Summary.of("passthrough", [result])])
    out = session.console.file
    assert isinstance(out, io.StringIO)
    shown = out.getvalue()
    assert "| passthrough | 1 | 500 |" in shown and f"report: {session.report}" in shown


def test_a_stage_against_its_baseline() -> None:
    base = Summary.of("B", [RunResult("B", events=1000, wall_s=1.0, cpu_s=0.010)])
    stage = Summary.of("stage", [RunResult("stage", events=1000, wall_s=2.0, cpu_s=0.030)])
    rate, cpu, extra = versus(stage, base)
    assert (rate, cpu, extra) == pytest.approx((0.5, 3.0, 20.0))
