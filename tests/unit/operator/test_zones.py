"""spec.zones rendered into what enrichment and detection read, and refused when unusable."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from fleet_operator.objects import Owner
from fleet_operator.render import env_for, render
from fleet_operator.rules import InvalidRules, checked_rules
from fleet_operator.sizing import plan
from fleet_operator.spec import Component, FleetPipelineSpec, parse_spec
from fleetpipe.detection.config import Rules
from fleetpipe.enrichment.enrich import SpeedLimits

pytestmark = pytest.mark.unit

OWNER = Owner(name="fleet", namespace="prod", uid="1234-abcd")
SQUARE = [[52.30, 4.80], [52.30, 5.00], [52.42, 5.00], [52.42, 4.80]]
BASE: dict[str, Any] = {
    "fleet": {"vehicles": 5000},
    "kafka": {"bootstrapServers": "kafka:9092"},
    "storage": {"databaseSecret": "db"},
    "notification": {"twilioSecret": "twilio"},
    "rules": {
        "geofence": {
            "min_duration_s": 30,
            "fences": [{"name": "yard", "kind": "keep_out", "polygon": SQUARE}],
        }
    },
}
ZONES = [
    {"name": "city", "polygon": SQUARE, "speed_limit_kmh": 50, "geofence": "keep_in"},
    {"name": "school", "polygon": SQUARE, "speed_limit_kmh": 30, "fleets": ["fleet-b"]},
    {"name": "airport", "polygon": SQUARE, "geofence": "keep_out"},
]


def spec(**extra: Any) -> FleetPipelineSpec:
    return parse_spec({**BASE, **extra})


def _files(pipeline: FleetPipelineSpec) -> tuple[dict[str, Any], dict[str, Any]]:
    found = {(m["kind"], m["metadata"]["name"]): m for m in render(OWNER, pipeline, plan(pipeline))}
    rules = yaml.safe_load(found[("ConfigMap", "fleet-rules")]["data"]["rules.yaml"])
    limits = yaml.safe_load(found[("ConfigMap", "fleet-limits")]["data"]["limits.yaml"])
    return rules, limits


def test_speed_zones_go_to_enrichment_and_geofences_to_detection() -> None:
    rules, limits = _files(spec(zones=ZONES))
    # Read back by the services' own models, as the pods will.
    parsed = Rules.parse(rules)
    assert [(f.name, f.kind) for f in parsed.geofence.fences] == [
        ("yard", "keep_out"),
        ("city", "keep_in"),
        ("airport", "keep_out"),
    ]
    assert parsed.geofence.min_duration_s == 30, "the rules' own geofence settings stay"
    table = SpeedLimits.model_validate(limits)
    assert [(a.name, a.speed_limit_kmh, a.fleets) for a in table.areas] == [
        ("city", 50, []),
        ("school", 30, ["fleet-b"]),
    ]


def test_enrichment_follows_the_limits_config_map() -> None:
    pipeline = spec(zones=ZONES)
    env = {e["name"]: e.get("value") for e in env_for(OWNER, pipeline, Component.ENRICHMENT)}
    assert env["FLEET_SPEED_LIMITS_PATH"] == "/etc/fleetpipe/limits/limits.yaml"
    found = {(m["kind"], m["metadata"]["name"]): m for m in render(OWNER, pipeline, plan(pipeline))}
    pod = found[("Deployment", "fleet-enrichment")]["spec"]["template"]["spec"]
    assert {"name": "limits", "configMap": {"name": "fleet-limits"}} in pod["volumes"]


def test_without_zones_the_files_are_the_rules_and_an_empty_table() -> None:
    rules, limits = _files(spec())
    assert rules == BASE["rules"] and limits == {}


@pytest.mark.parametrize(
    ("zones", "field"),
    [
        pytest.param(
            [{"name": "x", "polygon": [[0, 0], [1, 1], [0, 1], [1, 0]], "geofence": "keep_in"}],
            r"spec\.zones\.0\.polygon: .*crosses itself",
            id="bow-tie",
        ),
        pytest.param([{"name": "x", "polygon": SQUARE}], r"spec\.zones\.0: .*set speed", id="idle"),
        pytest.param([ZONES[0], ZONES[0]], r"spec\.zones: zone names must be unique", id="twice"),
        pytest.param(
            [{"name": "yard", "polygon": SQUARE, "geofence": "keep_in"}],
            r"spec\.rules \(with spec\.zones' geofences\): geofence\.fences: .*unique: yard",
            id="same-name-as-a-rules-fence",
        ),
    ],
)
def test_zones_a_service_would_refuse_are_named(zones: list[Any], field: str) -> None:
    with pytest.raises(InvalidRules, match=field):
        checked_rules(spec(zones=zones))
