"""The demo's city files and its per-scenario account: no zero goes unexplained."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetpipe.enrichment.enrich import SpeedLimits
from fleetpipe_dev.scenarios import missed_kinds, scenario_rows, write_city_files
from fleetpipe_loadtest.report import LoadReport
from fleetpipe_loadtest.scenarios import ScenarioKind

pytestmark = pytest.mark.unit


def test_the_city_files_give_detection_the_fence_and_enrichment_the_speed_zone(
    tmp_path: Path,
) -> None:
    files = write_city_files(tmp_path)
    assert [(f.name, f.kind) for f in files.parsed.geofence.fences] == [
        ("operating-area", "keep_in")
    ]
    limits = SpeedLimits.load(files.speed_limits)
    assert [(a.name, a.speed_limit_kmh) for a in limits.areas] == [("city", 60.0)]


def test_every_kind_has_a_row_and_every_zero_a_reason(tmp_path: Path) -> None:
    report = LoadReport("fleetpipe demo", "2026-01-01 00:00:00", {"cpus": "2"}, {})
    report.injected_by_kind = {"speeding": 3, "offline": 2, "geofence_exit": 1, "sos": 2}
    report.held_s = {"speeding": [40.0, 5.0, 80.0], "offline": [120.0, 30.0], "sos": [30.0, 45.0]}
    report.alerts_by_rule = {"speeding": {"OPEN": 2}, "crash": {"OPEN": 1}}
    rows = {r.kind: r for r in scenario_rows(report, write_city_files(tmp_path).parsed)}
    assert list(rows) == [k.value for k in ScenarioKind]
    assert (rows["speeding"].due, rows["speeding"].opened, rows["speeding"].ok) == (2, 2, True)
    assert rows["offline"].note == "none held for the rule's 600 s before the run ended"
    assert rows["geofence_exit"].note.startswith("injected, but its condition had not begun")
    assert rows["low_fuel"].note.startswith("not injected")
    assert not rows["sos"].ok and rows["sos"].note == "MISSED: 2 of 2 that lasted long enough"
    assert rows["crash"].note == "detected"
    # The missed kind fails the demo's run; the unexplained-but-explained zeros do not.
    assert missed_kinds(list(rows.values())) == ["sos"]
