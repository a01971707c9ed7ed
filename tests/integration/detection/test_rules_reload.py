"""A changed rules file applies without a restart; a broken one is refused and the last good
rules stay — detection and enrichment as processes on the real broker."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleetpipe.core.settings import KafkaSettings, Topics
from fleetpipe.pb.v1 import alert_pb2
from fleetpipe.registry import Vehicle
from fleetpipe_dev.testing import ServiceProcess, wait_for
from support.stages import Stages, telemetry

pytestmark = pytest.mark.integration

LIMITS = "default_kmh: 80\n"
QUIET = "gear_mismatch: {enabled: false}\n"


def _rules(threshold: float) -> str:
    return (
        f"speeding: {{threshold_kmh: {threshold}, hysteresis_kmh: 0, min_duration_s: 0, "
        f"clear_after_s: 0, tiers: []}}\n{QUIET}"
    )


def _reloads(proc: ServiceProcess, outcome: str) -> float:
    _, text = proc.get("/metrics")
    name = "fleetpipe_detection_rules_reloads_total"
    found = re.search(rf'^{name}{{outcome="{outcome}"}} (\S+)$', text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


@pytest.fixture
def stages(kafka_settings: KafkaSettings, topics: Topics, tmp_path: Path) -> Iterator[Stages]:
    run = Stages(kafka_settings, topics, tmp_path)
    yield run
    run.stop()


def test_a_rules_change_applies_without_restart_and_a_broken_one_is_refused(
    stages: Stages,
) -> None:
    stages.start(
        vehicles=[Vehicle("v-1", "fleet-1", "car", "M", "d-1", "D")],
        limits=LIMITS,
        rules=_rules(100),
    )
    detection = stages.detection
    pid = detection.pid
    seq = 0

    def drive(speed: float, seconds: int) -> None:
        nonlocal seq
        events = []
        for _ in range(seconds):
            seq += 1
            t_us = 1_800_000_000_000_000 + seq * 1_000_000
            events.append(("v-1", telemetry("v-1", seq, speed=speed, lat=10, lon=10, t_us=t_us)))
        stages.send(events)

    drive(95, 10)
    assert stages.processed() == [], "95 km/h is under the threshold of 100"

    # A misspelt key: refused, the process stays up with the rules it had.
    stages.rules_path.write_text("speeding: {threshhold_kmh: 50}\n")
    wait_for(lambda: _reloads(detection, "failed") == 1, timeout=30, what="the refused reload")
    assert "speeding.threshhold_kmh" in detection.log()
    drive(95, 10)
    assert stages.processed() == [], "the last good rules still apply"

    stages.rules_path.write_text(_rules(90))
    wait_for(lambda: _reloads(detection, "ok") == 1, timeout=30, what="the rules reload")
    drive(95, 10)
    drive(50, 5)
    alerts = stages.processed()
    assert [(a.rule, a.state) for a in alerts] == [
        ("speeding", alert_pb2.ALERT_STATE_OPEN),
        ("speeding", alert_pb2.ALERT_STATE_RESOLVED),
    ]
    assert alerts[0].alert_id == alerts[1].alert_id
    assert alerts[0].seq == 21, "opened by the first event after the change"
    assert detection.pid == pid and detection.alive(), "no restart"
