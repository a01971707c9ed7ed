"""What the demo configures so every injected scenario can alert, and its account per kind.

The demo runs detection with the seeds' rules plus the simulated city's zones
(:func:`fleetpipe_loadtest.city.city_zones`): the operating area as a keep-in geofence and a
speed zone — rendered into the rules and speed-limit files exactly as the operator renders a
FleetPipeline's ``spec.zones``. Its summary then lists every scenario kind the simulator knows,
with what was injected, how many of those episodes lasted long enough for their rule to open
(its minimum duration; offline's silence threshold), and how many alerts opened. A zero is
never left unexplained: the row says whether nothing was injected, nothing lasted long enough
in a run this short, or detection missed it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from fleetpipe.core.zones import fences, speed_areas
from fleetpipe.detection.config import Rules
from fleetpipe_loadtest.city import city_zones
from fleetpipe_loadtest.report import LoadReport
from fleetpipe_loadtest.scenarios import ScenarioKind


@dataclass(frozen=True)
class CityFiles:
    rules: Path
    speed_limits: Path
    parsed: Rules


def write_city_files(folder: Path) -> CityFiles:
    """Detection's rules and enrichment's speed limits for the simulated city, in ``folder``."""
    zones = city_zones()
    rules_doc: dict[str, Any] = {"geofence": {"fences": fences(zones)}}
    rules = folder / "rules.yaml"
    rules.write_text(yaml.safe_dump(rules_doc, sort_keys=True))
    limits = folder / "speed-limits.yaml"
    limits.write_text(yaml.safe_dump({"areas": speed_areas(zones)}, sort_keys=True))
    return CityFiles(rules, limits, Rules.parse(rules_doc))


def min_duration_s(rules: Rules, kind: str) -> float:
    """How long ``kind``'s condition must hold before its rule opens an alert."""
    if kind == ScenarioKind.OFFLINE:
        return rules.offline.after_s
    if kind == ScenarioKind.GEOFENCE_EXIT:
        return rules.geofence.min_duration_s
    config = getattr(rules, kind)
    return float(config.min_duration_s)


@dataclass(frozen=True)
class ScenarioRow:
    kind: str
    injected: int  # scenarios the simulator injected
    episodes: int  # ...whose condition began (the simulator's ground truth)
    due: int  # ...that held at least the rule's minimum duration
    opened: int  # alerts of the rule opened
    min_s: float
    note: str
    ok: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def scenario_rows(report: LoadReport, rules: Rules) -> list[ScenarioRow]:
    """One row per scenario kind the simulator knows, in its order."""
    rows = []
    for kind in ScenarioKind:
        injected = report.injected_by_kind.get(kind.value, 0)
        held = report.held_s.get(kind.value, [])
        min_s = min_duration_s(rules, kind.value)
        due = sum(1 for h in held if h >= min_s)
        opened = report.alerts_by_rule.get(kind.value, {}).get("OPEN", 0)
        ok = True
        if opened and opened >= due:
            note = "detected"
        elif not injected and not held:
            note = "not injected in this run (scenarios are drawn at random)"
        elif not held:
            note = "injected, but its condition had not begun when the run ended"
        elif not due:
            note = f"none held for the rule's {min_s:g} s before the run ended"
        else:
            note = f"MISSED: {due - opened} of {due} that lasted long enough"
            ok = False
        rows.append(ScenarioRow(kind.value, injected, len(held), due, opened, min_s, note, ok))
    return rows


def missed_kinds(rows: list[ScenarioRow]) -> list[str]:
    """The kinds with an injected episode that lasted long enough and raised no alert: each
    fails the demo's run (its exit code), as a lost event does."""
    return [r.kind for r in rows if not r.ok]
