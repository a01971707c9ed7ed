"""The spec model: the samples parse, defaults fill in, bad values are named; it matches the CRD."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from fleet_operator.spec import (
    AutoscalingMode,
    Component,
    FleetPipelineSpec,
    SpecError,
    parse_spec,
)

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
CRD = ROOT / "k8s" / "crds" / "fleetpipelines.yaml"
SAMPLES = sorted((ROOT / "k8s" / "samples").glob("*.yaml"))

MINIMAL: dict[str, Any] = {
    "fleet": {"vehicles": 50_000},
    "kafka": {"bootstrapServers": "kafka:9092"},
    "storage": {"databaseSecret": "db"},
    "notification": {"twilioSecret": "twilio"},
}


def with_(path: str, value: Any) -> dict[str, Any]:
    """MINIMAL with ``a.b.c`` set to ``value``."""
    raw: dict[str, Any] = yaml.safe_load(yaml.safe_dump(MINIMAL))
    node = raw
    *parents, leaf = path.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = value
    return raw


def crd_schema() -> dict[str, Any]:
    doc = yaml.safe_load(CRD.read_text())
    schema: dict[str, Any] = doc["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    spec: dict[str, Any] = schema["properties"]["spec"]
    return spec


@pytest.mark.parametrize("path", SAMPLES, ids=[p.name for p in SAMPLES])
def test_samples_parse(path: Path) -> None:
    doc = yaml.safe_load(path.read_text())
    spec = parse_spec(doc["spec"])
    assert spec.fleet.vehicles in (50_000, 100_000)
    assert spec.autoscaling.mode is AutoscalingMode.OFF  # the quoted "Off" stays a string


def test_defaults_fill_in() -> None:
    spec = parse_spec(MINIMAL)
    assert spec.fleet.vehicles_per_partition == 1000
    assert spec.fleet.events_per_vehicle_per_second == 1.0
    assert spec.kafka.replication_factor == 3
    assert spec.target_utilisation == 0.7
    assert spec.services.of(Component.DETECTION).capacity_per_replica == 15_000
    assert spec.notification.channels.critical == ("sms", "voice")


def test_a_partial_service_entry_keeps_the_other_defaults() -> None:
    spec = parse_spec(with_("services.storageWriter", {"maxReplicas": 20}))
    scaling = spec.services.of(Component.STORAGE_WRITER)
    assert (scaling.max_replicas, scaling.capacity_per_replica, scaling.min_replicas) == (
        20,
        10_000,
        1,
    )


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        pytest.param(with_("fleet.vehicles", 0), "spec.fleet.vehicles", id="no-vehicles"),
        pytest.param(with_("kafka.compression", "brotli"), "spec.kafka.compression", id="enum"),
        pytest.param(
            with_("services.detection", {"minReplicas": 9, "maxReplicas": 2}),
            "spec.services.detection",
            id="min-above-max",
        ),
        pytest.param(
            with_("kafka.securityProtocol", "SASL_SSL"), "spec.kafka", id="sasl-without-credentials"
        ),
        pytest.param(
            with_("fleet.vehiclesPerPartition", 1), "spec.fleet", id="too-many-partitions"
        ),
        pytest.param(
            {k: v for k, v in MINIMAL.items() if k != "storage"}, "spec.storage", id="missing"
        ),
        pytest.param(with_("autoscaling.mode", False), "spec.autoscaling.mode", id="bare-Off"),
        pytest.param(with_("fleet.colour", "red"), "spec.fleet.colour", id="unknown-field"),
        pytest.param(
            with_("tracing.samplingRatio", 1.5), "spec.tracing.samplingRatio", id="ratio-above-1"
        ),
        pytest.param(
            with_("tracing.otlpEndpoint", "jaeger:4317"),
            "spec.tracing.otlpEndpoint",
            id="no-scheme",
        ),
        pytest.param(
            with_("kpis.windowSeconds", 30), "spec.kpis.windowSeconds", id="kpi-window-short"
        ),
        pytest.param(with_("kpis.hopSeconds", 0), "spec.kpis.hopSeconds", id="kpi-hop-zero"),
        pytest.param(
            with_("kpis", {"windowSeconds": 900, "hopSeconds": 70}),
            "spec.kpis: Value error, kpis.windowSeconds",
            id="kpi-window-not-whole-hops",
        ),
        pytest.param(
            with_("kpis", {"windowSeconds": 86_400, "hopSeconds": 60}),
            "kpis.windowSeconds / kpis.hopSeconds must not exceed 360",
            id="kpi-too-many-windows-per-event",
        ),
        pytest.param(
            with_("kpis.allowedLatenessSeconds", -1),
            "spec.kpis.allowedLatenessSeconds",
            id="kpi-negative-lateness",
        ),
        pytest.param(with_("kpis.colour", "red"), "spec.kpis.colour", id="kpi-unknown-field"),
    ],
)
def test_bad_specs_are_refused_naming_the_field(raw: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError, match=field.replace(".", r"\.")):
        parse_spec(raw)


# ---- the model and the CRD schema say the same thing -------------------------------------
def _pairs(model: type[BaseModel], schema: dict[str, Any], path: str) -> list[tuple[str, Any, Any]]:
    """(path, model field info, schema node) for every field the model declares."""
    out = []
    props = schema.get("properties", {})
    for name, info in model.model_fields.items():
        alias = info.alias or name
        assert alias in props, f"{path}.{alias} is in the model but not in the CRD"
        out.append((f"{path}.{alias}", info, props[alias]))
    extra = set(props) - {info.alias or n for n, info in model.model_fields.items()}
    assert not extra, f"{path}: {sorted(extra)} in the CRD but not in the model"
    return out


def _walk(model: type[BaseModel], schema: dict[str, Any], path: str) -> list[tuple[str, Any, Any]]:
    found = []
    for where, info, node in _pairs(model, schema, path):
        found.append((where, info, node))
        annotation = info.annotation
        nested = [
            a
            for a in (getattr(annotation, "__args__", None) or (annotation,))
            if isinstance(a, type) and issubclass(a, BaseModel)
        ]
        if nested and "properties" in node:
            found += _walk(nested[0], node, where)
    return found


FIELDS = _walk(FleetPipelineSpec, crd_schema(), "spec")


@pytest.mark.parametrize(("where", "info", "node"), FIELDS, ids=[f[0] for f in FIELDS])
def test_model_and_crd_agree_on_defaults_bounds_and_enums(where: str, info: Any, node: Any) -> None:
    # Per-service defaults differ by service: test_per_service_defaults_match_the_crd.
    if "default" in node and not isinstance(node["default"], dict) and not info.is_required():
        default = info.get_default(call_default_factory=True)
        if isinstance(default, tuple):
            default = list(default)
        if hasattr(default, "value"):
            default = default.value
        assert default == node["default"], where
    for meta in info.metadata:
        for attr, key in (("ge", "minimum"), ("le", "maximum"), ("gt", "minimum")):
            bound = getattr(meta, attr, None)
            if bound is not None:
                assert node.get(key) == bound, f"{where}: {key}"
        for attr, key in (("min_length", "minLength"), ("max_length", "maxLength")):
            bound = getattr(meta, attr, None)
            if bound is not None:
                assert node.get(key) == bound, f"{where}: {key}"
        pattern = getattr(meta, "pattern", None)
        if pattern is not None:
            assert node.get("pattern") == pattern, f"{where}: pattern"
    if "enum" in node and node.get("type") == "string":
        literal = info.annotation
        values = {getattr(v, "value", v) for v in _enum_values(literal)}
        assert values == set(node["enum"]), where


def _enum_values(annotation: Any) -> list[Any]:
    from enum import Enum
    from typing import get_args

    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return list(annotation)
    values: list[Any] = []
    for arg in get_args(annotation):
        if arg is type(None):
            continue
        values += _enum_values(arg) if get_args(arg) or isinstance(arg, type) else [arg]
    return values


def test_per_service_defaults_match_the_crd() -> None:
    services = crd_schema()["properties"]["services"]["properties"]
    spec = parse_spec(MINIMAL)
    for component in Component:
        node = services[component.key]["properties"]
        scaling = spec.services.of(component)
        assert node["capacityPerReplica"]["default"] == scaling.capacity_per_replica
        assert node["minReplicas"]["default"] == scaling.min_replicas
        assert node["maxReplicas"]["default"] == scaling.max_replicas
