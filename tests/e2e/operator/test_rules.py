"""Rules people can set and trust, on the real API server (issue 16's "Must show").

The CRD's ``spec.rules`` schema is generated from the model detection parses, so the API
server refuses a misspelt rule or a wrong type naming the field; what a schema cannot say the
operator refuses with an InvalidRules condition and Event. A ``kubectl patch`` of a threshold
reaches a running detection process through the rules ConfigMap and changes which alerts open,
end to end on Kafka, without losing or repeating an episode.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from fleetpipe.pb.v1 import alert_pb2
from fleetpipe.registry import Vehicle
from fleetpipe_dev.testing import ServiceProcess, wait_for
from support.stages import Stages, telemetry

pytestmark = pytest.mark.e2e

SAMPLES = Path(__file__).resolve().parents[3] / "k8s" / "samples"
SAMPLE_RULE = "    speeding: {threshold_kmh: 80, min_duration_s: 10}\n"


@pytest.mark.parametrize(
    ("rules", "field", "message"),
    [
        pytest.param(
            "    speeding: {threshhold_kmh: 80, min_duration_s: 10}\n",
            "spec.rules.speeding.threshhold_kmh",
            "unknown field",
            id="misspelt-key",
        ),
        pytest.param(
            "    speding: {threshold_kmh: 80}\n",
            "spec.rules.speding",
            "unknown field",
            id="misspelt-rule",
        ),
        pytest.param(
            '    speeding: {threshold_kmh: "120", min_duration_s: 10}\n',
            "spec.rules.speeding.threshold_kmh",
            "must be of type number",
            id="string-for-a-number",
        ),
        pytest.param(
            "    speeding: {threshold_kmh: 0}\n",
            "spec.rules.speeding.threshold_kmh",
            "should be greater than 0",
            id="out-of-bounds",
        ),
        pytest.param(
            "    speeding: {tiers: [{severity: urgent, above_kmh: 120}]}\n",
            "spec.rules.speeding.tiers[0].severity",
            "Unsupported value",
            id="unknown-severity",
        ),
    ],
)
def test_bad_rules_are_refused_by_the_api_server_naming_the_field(
    kube: Any, crd: str, namespace: str, rules: str, field: str, message: str
) -> None:
    text = (SAMPLES / "fleetpipeline-50k.yaml").read_text()
    assert SAMPLE_RULE in text
    result = kube.run(
        "apply", "-n", namespace, "-f", "-", stdin=text.replace(SAMPLE_RULE, rules), check=False
    )
    assert result.returncode != 0
    assert field in result.stderr, result.stderr
    assert message in result.stderr, result.stderr
    assert kube.run("get", "fp", "-n", namespace, "-o", "name").stdout == ""


def _rules_file(kube: Any, namespace: str, name: str) -> str:
    found = kube.json("get", "configmap", f"{name}-rules", "-n", namespace)
    text: str = found["data"]["rules.yaml"]
    return text


def _patch_rules(kube: Any, namespace: str, name: str, rules: dict[str, Any]) -> Any:
    return kube.run(
        "patch",
        "fp",
        name,
        "-n",
        namespace,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"rules": rules}}),
        check=False,
    )


def test_rules_the_schema_cannot_check_are_reported_and_the_last_good_ones_kept(
    kube: Any, operator: Any, make_pipeline: Any
) -> None:
    pipeline = make_pipeline(fleet={"vehicles": 2000})
    ns, name = pipeline.namespace, pipeline.name
    kube.wait_ready(ns, name)
    good = _rules_file(kube, ns, name)
    # A tier with no bound passes the schema (both bounds are optional) but not detection.
    result = _patch_rules(kube, ns, name, {"speeding": {"tiers": [{"severity": "critical"}]}})
    assert result.returncode == 0, result.stderr

    def degraded() -> dict[str, Any] | None:
        found: dict[str, Any] = kube.condition(ns, name, "Degraded")
        return found if found.get("reason") == "InvalidRules" else None

    condition = wait_for(degraded, timeout=60, what="the InvalidRules condition")
    assert condition["message"].startswith("spec.rules"), condition
    assert "speeding.tiers.0" in condition["message"], condition
    assert kube.condition(ns, name, "Ready")["status"] == "False"
    events = kube.wait_events(ns, name, "InvalidRules")
    assert any("speeding.tiers.0" in m for r, m in events if r == "InvalidRules")
    assert _rules_file(kube, ns, name) == good, "detection's ConfigMap keeps the last good rules"


@pytest.fixture
def stages() -> Iterator[list[Stages]]:
    made: list[Stages] = []
    yield made
    for run in made:
        run.stop()


def _reloads(proc: ServiceProcess) -> int:
    _, text = proc.get("/metrics")
    line = 'fleetpipe_detection_rules_reloads_total{outcome="ok"} '
    found = [row for row in text.splitlines() if row.startswith(line)]
    return int(float(found[0].split()[-1])) if found else 0


def test_a_patched_threshold_changes_which_alerts_open_without_losing_or_repeating_one(
    kube: Any, kafka: Any, operator: Any, make_pipeline: Any, stages: list[Stages], tmp_path: Path
) -> None:
    quiet = {"hysteresis_kmh": 0, "min_duration_s": 0, "clear_after_s": 0, "tiers": []}
    pipeline = make_pipeline(
        fleet={"vehicles": 2000},
        rules={"speeding": {"threshold_kmh": 100, **quiet}, "gear_mismatch": {"enabled": False}},
    )
    ns, name = pipeline.namespace, pipeline.name
    kube.wait_ready(ns, name)
    # Enrichment and detection run here, on the pipeline's topics; the test does the kubelet's
    # part and copies the rules ConfigMap into the file detection follows.
    run = Stages(kafka.settings, pipeline.topics, tmp_path)
    stages.append(run)
    run.start(
        vehicles=[Vehicle(v, "fleet-1", "car", "M", "d", "D") for v in ("at-95", "at-105")],
        limits="default_kmh: 80\n",
        rules=_rules_file(kube, ns, name),
    )
    pid = run.detection.pid
    seq = 0

    def drive(seconds: int, speeds: dict[str, float]) -> None:
        nonlocal seq
        events = []
        for _ in range(seconds):
            seq += 1
            t_us = 1_800_000_000_000_000 + seq * 1_000_000
            for vehicle, speed in speeds.items():
                events.append(
                    (vehicle, telemetry(vehicle, seq, speed=speed, lat=10, lon=10, t_us=t_us))
                )
        run.send(events)

    def patch_threshold(kmh: float, reloads: int) -> None:
        before = _rules_file(kube, ns, name)
        result = _patch_rules(kube, ns, name, {"speeding": {"threshold_kmh": kmh}})
        assert result.returncode == 0, result.stderr
        text = wait_for(
            lambda: now if (now := _rules_file(kube, ns, name)) != before else None,
            timeout=60,
            what=f"the rules ConfigMap at {kmh} km/h",
        )
        assert yaml.safe_load(text)["speeding"]["threshold_kmh"] == kmh
        run.rules_path.write_text(text)
        wait_for(lambda: _reloads(run.detection) == reloads, timeout=30, what="detection's reload")

    cruising = {"at-95": 95.0, "at-105": 105.0}
    drive(5, cruising)
    # The sample's city puts these vehicles outside its operating area too: speeding only.
    assert [(a.vehicle_id, a.state) for a in run.processed() if a.rule == "speeding"] == [
        ("at-105", alert_pb2.ALERT_STATE_OPEN)
    ]
    patch_threshold(90, 1)
    drive(5, cruising)
    patch_threshold(100, 2)
    drive(5, cruising)
    drive(3, {"at-95": 50.0, "at-105": 50.0})

    said = [(a.vehicle_id, a.state, a.seq) for a in run.processed() if a.rule == "speeding"]
    open_, resolved = alert_pb2.ALERT_STATE_OPEN, alert_pb2.ALERT_STATE_RESOLVED
    assert sorted(said) == [
        # Opened by the first event after the threshold went down to 90, resolved by the first
        # after it went back to 100.
        ("at-105", open_, 1),
        ("at-105", resolved, 16),
        ("at-95", open_, 6),
        ("at-95", resolved, 11),
    ]
    assert run.detection.pid == pid and run.detection.alive(), "no restart"


def test_the_samples_zones_reach_enrichment_and_detection_and_alert(
    kube: Any, kafka: Any, operator: Any, make_pipeline: Any, stages: list[Stages], tmp_path: Path
) -> None:
    # The 50K sample as shipped (its city: a 60 km/h zone inside a keep-in operating area).
    pipeline = make_pipeline(fleet={"vehicles": 2000})
    ns, name = pipeline.namespace, pipeline.name
    kube.wait_ready(ns, name)
    limits = kube.json("get", "configmap", f"{name}-limits", "-n", ns)["data"]["limits.yaml"]
    run = Stages(kafka.settings, pipeline.topics, tmp_path)
    stages.append(run)
    run.start(
        vehicles=[Vehicle(v, "fleet-1", "car", "M", "d", "D") for v in ("centre", "away")],
        limits=limits,
        rules=_rules_file(kube, ns, name),
    )
    centre, outside = (52.3676, 4.9041), (52.60, 4.90)  # in the city; 26 km north, outside
    events = []
    for seq in range(1, 41):
        t_us = 1_800_000_000_000_000 + seq * 1_000_000
        # 65 km/h in the 60 zone (under the sample's 80 elsewhere), for 40 s.
        events.append(
            ("centre", telemetry("centre", seq, speed=65, lat=centre[0], lon=centre[1], t_us=t_us))
        )
        events.append(
            ("away", telemetry("away", seq, speed=40, lat=outside[0], lon=outside[1], t_us=t_us))
        )
    run.send(events)
    opened = {
        (a.vehicle_id, a.rule, a.values.get("limit_kmh", 0.0))
        for a in run.processed()
        if a.state == alert_pb2.ALERT_STATE_OPEN
    }
    assert opened == {("centre", "speeding", 60.0), ("away", "geofence_exit", 0.0)}
