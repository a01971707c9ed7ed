from __future__ import annotations

from pathlib import Path

import pytest

from fleetpipe.core.errors import ConfigError
from fleetpipe.detection.config import Rules

pytestmark = pytest.mark.unit


def test_defaults_are_the_seeds_thresholds() -> None:
    rules = Rules()
    assert rules.speeding.threshold_kmh == 80
    assert rules.low_fuel.threshold_pct == 10
    assert rules.overheating.threshold_c == 200
    assert rules.low_battery.threshold_pct == 15
    assert rules.over_revving.threshold_rpm == 6000
    assert rules.offline.after_s == 600
    assert rules.crash.severity == rules.sos.severity == "critical"


def test_realistic_profile_changes_only_what_the_file_leaves_open() -> None:
    assert Rules.parse({"profile": "realistic"}).overheating.threshold_c == 110
    explicit = Rules.parse({"profile": "realistic", "overheating": {"threshold_c": 120}})
    assert explicit.overheating.threshold_c == 120


def test_a_rules_file_is_nested_by_rule_name(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        "speeding: {threshold_kmh: 90, min_duration_s: 5}\n"
        "geofence:\n"
        "  fences:\n"
        "    - name: depot\n"
        "      kind: keep_in\n"
        "      polygon: [[52.0, 4.0], [52.0, 5.0], [53.0, 5.0]]\n"
    )
    rules = Rules.load(path)
    assert rules.speeding.threshold_kmh == 90
    assert rules.speeding.min_duration_s == 5
    assert rules.speeding.clear_after_s == 10
    assert rules.geofence.fences[0].polygon[2] == (53.0, 5.0)


def test_an_empty_file_means_defaults(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("")
    assert Rules.load(path) == Rules()


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        pytest.param({"speeding": {"threshold_kmh": -1}}, "speeding.threshold_kmh", id="negative"),
        pytest.param({"speeding": {"treshold_kmh": 90}}, "speeding.treshold_kmh", id="typo"),
        pytest.param({"speedin": {}}, "speedin: Extra inputs", id="unknown-rule"),
        pytest.param({"sos": {"severity": "urgent"}}, "sos.severity", id="bad-severity"),
        pytest.param({"profile": "strict"}, "profile", id="bad-profile"),
        pytest.param(
            {"geofence": {"fences": [{"name": "x", "kind": "keep_in", "polygon": [[1, 2]]}]}},
            "geofence.fences.0.polygon",
            id="too-few-vertices",
        ),
        pytest.param(
            {
                "geofence": {
                    "fences": [
                        {
                            "name": "bow",
                            "kind": "keep_in",
                            "polygon": [[0, 0], [1, 1], [1, 0], [0, 1]],
                        }
                    ]
                }
            },
            "crosses itself",
            id="self-intersecting",
        ),
        pytest.param(
            {"geofence": {"fences": [{"name": "x", "kind": "fence", "polygon": []}]}},
            "geofence.fences.0.kind",
            id="bad-kind",
        ),
        pytest.param(
            {"driver_score": {"window_s": 60, "bucket_s": 600}},
            "bucket_s must not exceed window_s",
            id="bucket-wider-than-window",
        ),
        pytest.param(["speeding"], "expected a mapping", id="not-a-mapping"),
    ],
)
def test_bad_rules_are_refused_naming_the_field(doc: object, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        Rules.parse(doc, source="rules.yaml")
    assert message in str(info.value)
    assert str(info.value).startswith("rules.yaml: ")


def test_an_unreadable_rules_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("speeding: [unclosed\n")
    with pytest.raises(ConfigError, match=r"rules\.yaml"):
        Rules.load(path)
