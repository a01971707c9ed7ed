"""``fleetpipe simulate`` against a real ingest: everything arrives; Ctrl-C stops cleanly."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from fleetpipe.core.settings import KafkaSettings, Topics
from fleetpipe.registry import VehicleRegistry
from fleetpipe_dev.testing import read_events, wait_for
from fleetpipe_loadtest.scenarios import read_ground_truth
from support.ingest import Ingest, StartIngest

pytestmark = pytest.mark.integration


def simulate(ingest: Ingest, *args: str) -> list[str]:
    return [
        sys.executable, "-c", "from fleetpipe.cli import main; main()", "simulate",
        "--fleet", "fleet-a", "--target", ingest.address, "--streams", "2", *args,
    ]  # fmt: skip


def test_simulate_sends_every_event_and_writes_ground_truth_and_registry(
    start_ingest: StartIngest, topics: Topics, kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    ingest = start_ingest(topics)
    truth, registry = tmp_path / "truth.jsonl", tmp_path / "vehicles.csv"
    done = subprocess.run(
        simulate(
            ingest, "--vehicles", "50", "--duration", "1800", "--speedup", "0",
            "--batch-size", "200", "--scenarios", "all=1",
            "--ground-truth", str(truth), "--registry", str(registry),
        ),
        env={**os.environ, "FLEET_SIMULATE_TOKEN": ingest.token_a, "COLUMNS": "200"},
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    summary = re.search(
        r"([\d,]+) events generated.*\nacked ([\d,]+) \(accepted ([\d,]+)", done.stderr
    )
    assert summary, done.stderr[-2000:]
    generated, acked, accepted = (int(g.replace(",", "")) for g in summary.groups())
    # 50 vehicles × 1800 ticks, less what vehicles in an offline scenario did not send
    assert 85_000 < generated <= 90_000
    assert generated == acked == accepted
    assert "events/s" in done.stderr
    assert len(read_events(kafka_settings, topics.raw)) == generated
    assert len(VehicleRegistry.load(registry)) == 50
    assert read_ground_truth(truth), "scenarios were injected"
    assert ingest.token_a not in done.stderr


def test_simulate_stops_cleanly_on_ctrl_c(
    start_ingest: StartIngest, topics: Topics, tmp_path: Path
) -> None:
    ingest = start_ingest(topics)
    truth = tmp_path / "truth.csv"
    proc = subprocess.Popen(
        simulate(ingest, "--vehicles", "20", "--duration", "3600", "--ground-truth", str(truth)),
        env={**os.environ, "FLEET_SIMULATE_TOKEN": ingest.token_a, "COLUMNS": "200"},
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    stderr = proc.stderr
    lines: list[str] = []

    def progress() -> bool:
        lines.append(stderr.readline())
        return "acked" in lines[-1] and "acked 0 " not in lines[-1]

    wait_for(progress, timeout=60, interval=0, what="a progress line with acknowledged events")
    proc.send_signal(signal.SIGINT)
    out = stderr.read()
    assert proc.wait(timeout=60) == 130
    assert "interrupted" in out
    assert truth.exists()
    assert "Traceback" not in out
