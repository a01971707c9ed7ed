"""Manifests rendered from a spec: names, owner references, environment, volumes, topics."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from fleet_operator.objects import Owner, child_name
from fleet_operator.render import env_for, pipeline_topics, render, retired, topics_for
from fleet_operator.sizing import plan
from fleet_operator.spec import Component, FleetPipelineSpec, parse_spec

pytestmark = pytest.mark.unit

OWNER = Owner(name="fleet", namespace="prod", uid="1234-abcd")
BASE: dict[str, Any] = {
    "fleet": {"vehicles": 50_000},
    "kafka": {"bootstrapServers": "kafka-0:9092,kafka-1:9092", "replicationFactor": 3},
    "storage": {"databaseSecret": "db", "hotRetentionDays": 5, "coldPath": "/cold"},
    "notification": {"twilioSecret": "twilio", "minSeverity": "critical"},
    "rules": {"speeding": {"threshold_kmh": 90}},
}


def spec(**extra: Any) -> FleetPipelineSpec:
    return parse_spec({**BASE, **extra})


def manifests(pipeline: FleetPipelineSpec) -> dict[tuple[str, str], dict[str, Any]]:
    return {(m["kind"], m["metadata"]["name"]): m for m in render(OWNER, pipeline, plan(pipeline))}


def env(pipeline: FleetPipelineSpec, component: Component) -> dict[str, Any]:
    return {
        e["name"]: e.get("value", e.get("valueFrom")) for e in env_for(OWNER, pipeline, component)
    }


def test_the_kpi_stage_is_rendered_like_the_other_consumers() -> None:
    pipeline = spec(kpis={"windowSeconds": 60, "hopSeconds": 10, "allowedLatenessSeconds": 5})
    rendered = manifests(pipeline)
    deployment = rendered[("Deployment", "fleet-kpis")]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["fleetpipe-kpis"]
    assert deployment["spec"]["replicas"] == plan(pipeline).desired(Component.KPIS) == 4
    assert ("Service", "fleet-kpis") in rendered
    found = env(pipeline, Component.KPIS)
    assert found["FLEET_GROUP_ID"] == "fleetpipe-kpis"
    assert (found["FLEET_WINDOW_S"], found["FLEET_HOP_S"]) == ("60", "10")
    assert (found["FLEET_ALLOWED_LATENESS_S"], found["FLEET_IDLE_S"]) == ("5", "30")
    assert found["FLEET_TOPICS__KPIS"] == "fleet.kpis.v1"
    assert found["FLEET_TOPICS__KPI_STATE"] == "fleet.kpis.state.v1"


def test_the_kpi_stage_follows_the_topic_suffix_in_its_group() -> None:
    pipeline = spec(kafka={**BASE["kafka"], "topicSuffix": "eu"})
    assert env(pipeline, Component.KPIS)["FLEET_GROUP_ID"] == "fleetpipe-kpis.eu"


def test_a_disabled_kpi_stage_is_neither_rendered_nor_sized() -> None:
    pipeline = spec(kpis={"enabled": False})
    rendered = manifests(pipeline)
    assert not [key for key in rendered if key[1] == "fleet-kpis"]
    assert Component.KPIS not in plan(pipeline).services
    assert retired(OWNER, pipeline) == [
        ("apps/v1", "Deployment", "fleet-kpis"),
        ("v1", "Service", "fleet-kpis"),
    ]
    assert retired(OWNER, spec()) == []


def test_every_child_is_owned_by_the_pipeline_and_labelled() -> None:
    rendered = manifests(spec())
    # rules, speed limits and registry, then a Deployment and a Service each
    assert len(rendered) == 3 + 2 * len(Component)
    for manifest in rendered.values():
        meta = manifest["metadata"]
        assert meta["namespace"] == "prod"
        assert meta["ownerReferences"] == [
            {
                "apiVersion": "fleetpipe.io/v1alpha1",
                "kind": "FleetPipeline",
                "name": "fleet",
                "uid": "1234-abcd",
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
        assert meta["labels"]["fleetpipe.io/pipeline"] == "fleet"
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "fleetpipe-operator"


@pytest.mark.parametrize("component", list(Component), ids=[c.value for c in Component])
def test_a_deployment_and_a_service_per_component_with_the_planned_replicas(
    component: Component,
) -> None:
    pipeline = spec()
    rendered = manifests(pipeline)
    name = child_name(OWNER, component)
    deployment = rendered[("Deployment", name)]
    service = rendered[("Service", name)]
    assert deployment["spec"]["replicas"] == plan(pipeline).desired(component)
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert service["spec"]["selector"] == selector
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == [f"fleetpipe-{component.value}"]
    assert container["image"] == "fleetpipe:0.1.0"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_shared_environment_reaches_every_service() -> None:
    pipeline = spec(kafka={**BASE["kafka"], "topicSuffix": "blue"})
    for component in Component:
        found = env(pipeline, component)
        assert found["FLEET_KAFKA__BOOTSTRAP_SERVERS"] == "kafka-0:9092,kafka-1:9092"
        assert found["FLEET_KAFKA__COMPRESSION_TYPE"] == "lz4"
        assert found["FLEET_TOPICS__RAW"] == "fleet.telemetry.raw.v1.blue"
        assert found["FLEET_TOPICS__DETECTION_STATE"] == "fleet.detection.state.v1.blue"
        assert found["FLEET_OBSERVABILITY__HTTP_PORT"] == "8080"


@pytest.mark.parametrize(
    ("component", "expected"),
    [
        pytest.param(
            Component.INGEST,
            {
                "FLEET_GRPC_PORT": "50051",
                "FLEET_REGISTRY_PATH": "/etc/fleetpipe/registry/vehicles.csv",
                "FLEET_UNKNOWN_VEHICLES": "accept",
            },
            id="ingest",
        ),
        pytest.param(
            Component.ENRICHMENT,
            {
                "FLEET_GROUP_ID": "fleetpipe-enrichment",
                "FLEET_REGISTRY_PATH": "/etc/fleetpipe/registry/vehicles.csv",
            },
            id="enrichment",
        ),
        pytest.param(
            Component.DETECTION,
            {
                "FLEET_GROUP_ID": "fleetpipe-detection",
                "FLEET_RULES_PATH": "/etc/fleetpipe/rules/rules.yaml",
            },
            id="detection",
        ),
        pytest.param(
            Component.NOTIFICATION,
            {
                "FLEET_GROUP_ID": "fleetpipe-notification",
                "FLEET_ROUTING__MIN_SEVERITY": "critical",
                "FLEET_ROUTING__CHANNELS": json.dumps(
                    {"critical": ["sms", "voice"], "info": [], "warning": ["sms"]}
                ),
                "FLEET_POSTGRES__DSN": {"secretKeyRef": {"name": "db", "key": "dsn"}},
                "FLEET_TWILIO__AUTH_TOKEN": {
                    "secretKeyRef": {"name": "twilio", "key": "auth_token"}
                },
                "FLEET_TWILIO__WHATSAPP_FROM": {
                    "secretKeyRef": {"name": "twilio", "key": "whatsapp_from", "optional": True}
                },
            },
            id="notification",
        ),
        pytest.param(
            Component.STORAGE_WRITER,
            {
                "FLEET_GROUP_ID": "fleetpipe-storage-writer",
                "FLEET_POSTGRES__DSN": {"secretKeyRef": {"name": "db", "key": "dsn"}},
                "FLEET_HOT_RETENTION_DAYS": "5",
                "FLEET_LAKE__PATH": "/cold",
            },
            id="storage-writer",
        ),
    ],
)
def test_each_service_gets_its_own_settings(component: Component, expected: dict[str, Any]) -> None:
    found = env(spec(), component)
    assert {k: found.get(k) for k in expected} == expected


def test_ingest_is_not_a_consumer() -> None:
    assert "FLEET_GROUP_ID" not in env(spec(), Component.INGEST)


def test_secrets_are_referenced_never_inlined() -> None:
    pipeline = spec(
        kafka={
            **BASE["kafka"],
            "securityProtocol": "SASL_SSL",
            "saslMechanism": "SCRAM-SHA-512",
            "credentialsSecret": "kafka-user",
        }
    )
    for component in Component:
        for entry in env_for(OWNER, pipeline, component):
            name = entry["name"]
            if any(s in name for s in ("PASSWORD", "TOKEN", "DSN", "SID", "USERNAME")):
                assert "value" not in entry, name
                assert "secretKeyRef" in entry["valueFrom"], name
    found = env(pipeline, Component.ENRICHMENT)
    assert found["FLEET_KAFKA__SASL_PASSWORD"] == {
        "secretKeyRef": {"name": "kafka-user", "key": "password"}
    }
    assert found["FLEET_KAFKA__SECURITY_PROTOCOL"] == "SASL_SSL"


def test_group_ids_carry_the_topic_suffix() -> None:
    pipeline = spec(kafka={**BASE["kafka"], "topicSuffix": "blue"})
    assert env(pipeline, Component.DETECTION)["FLEET_GROUP_ID"] == "fleetpipe-detection.blue"


def test_rules_are_rendered_into_a_config_map_and_a_change_rolls_no_pod() -> None:
    first = manifests(spec())
    rules = first[("ConfigMap", "fleet-rules")]
    assert yaml.safe_load(rules["data"]["rules.yaml"]) == {"speeding": {"threshold_kmh": 90}}
    changed = manifests(spec(rules={"speeding": {"threshold_kmh": 70}}))
    assert yaml.safe_load(changed[("ConfigMap", "fleet-rules")]["data"]["rules.yaml"]) == {
        "speeding": {"threshold_kmh": 70}
    }
    # Detection follows the mounted file: its pods stay as they are.
    for component in ("detection", "enrichment"):
        key = ("Deployment", f"fleet-{component}")
        assert first[key]["spec"]["template"] == changed[key]["spec"]["template"]


def test_without_a_registry_an_empty_one_is_rendered_and_mounted() -> None:
    rendered = manifests(spec())
    registry = rendered[("ConfigMap", "fleet-registry")]
    assert registry["data"]["vehicles.csv"].startswith("vehicle_id,fleet_id,")
    volumes = rendered[("Deployment", "fleet-enrichment")]["spec"]["template"]["spec"]["volumes"]
    assert {"name": "registry", "configMap": {"name": "fleet-registry"}} in volumes


def test_a_named_registry_config_map_is_mounted_instead() -> None:
    pipeline = spec(registry={"configMapName": "vehicles-2026", "key": "fleet.csv"})
    rendered = manifests(pipeline)
    assert ("ConfigMap", "fleet-registry") not in rendered
    volumes = rendered[("Deployment", "fleet-notification")]["spec"]["template"]["spec"]["volumes"]
    assert {"name": "registry", "configMap": {"name": "vehicles-2026"}} in volumes
    assert (
        env(pipeline, Component.ENRICHMENT)["FLEET_REGISTRY_PATH"]
        == "/etc/fleetpipe/registry/fleet.csv"
    )


def test_ingest_service_type_and_grpc_port() -> None:
    rendered = manifests(spec(ingest={"serviceType": "LoadBalancer"}))
    service = rendered[("Service", "fleet-ingest")]
    assert service["spec"]["type"] == "LoadBalancer"
    assert {"name": "grpc", "port": 50051, "targetPort": "grpc", "protocol": "TCP"} in service[
        "spec"
    ]["ports"]


def test_topics_are_co_partitioned_with_the_specs_replication_and_retention() -> None:
    pipeline = spec(kafka={**BASE["kafka"], "retentionHours": 24})
    topics = topics_for(pipeline)
    specs = {s.name: s for s in pipeline_topics(pipeline, 50)}
    assert set(specs) == set(topics.model_dump().values())
    for name in (topics.raw, topics.enriched, topics.alerts, topics.trips, topics.scores):
        assert specs[name].partitions == 50
        assert specs[name].replication_factor == 3
        assert (specs[name].config or {})["retention.ms"] == str(24 * 3600 * 1000)
    state = specs[topics.detection_state]
    assert (state.config or {})["cleanup.policy"] == "compact"
    assert "retention.ms" not in (state.config or {})


def test_without_an_otlp_endpoint_no_service_exports_traces() -> None:
    for component in Component:
        assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in env(spec(), component)


def test_an_otlp_endpoint_and_ratio_reach_every_service() -> None:
    pipeline = spec(tracing={"otlpEndpoint": "http://jaeger:4317", "samplingRatio": 0.01})
    for component in Component:
        found = env(pipeline, component)
        assert found["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4317"
        assert (found["OTEL_TRACES_SAMPLER"], found["OTEL_TRACES_SAMPLER_ARG"]) == (
            "traceidratio",
            "0.01",
        )
        assert found["OTEL_SERVICE_NAME"] == f"fleetpipe-{component.value}"


def _settings_class(component: Component) -> type[BaseModel]:
    from fleetpipe.detection.settings import DetectionSettings
    from fleetpipe.enrichment.settings import EnrichmentSettings
    from fleetpipe.ingest.settings import IngestSettings
    from fleetpipe.kpis.settings import KpiSettings
    from fleetpipe.notification.settings import NotificationSettings
    from fleetpipe.storage_writer.settings import StorageSettings

    classes: dict[Component, type[BaseModel]] = {
        Component.INGEST: IngestSettings,
        Component.ENRICHMENT: EnrichmentSettings,
        Component.DETECTION: DetectionSettings,
        Component.NOTIFICATION: NotificationSettings,
        Component.STORAGE_WRITER: StorageSettings,
        Component.KPIS: KpiSettings,
    }
    return classes[component]


def _field_path_exists(model: type[BaseModel], path: list[str]) -> bool:
    field = model.model_fields.get(path[0])
    if field is None:
        return False
    if len(path) == 1:
        return True
    nested = field.annotation
    return (
        isinstance(nested, type)
        and issubclass(nested, BaseModel)
        and _field_path_exists(nested, path[1:])
    )


@pytest.mark.parametrize("component", list(Component), ids=[c.value for c in Component])
def test_every_rendered_fleet_variable_is_a_setting_the_service_reads(
    component: Component,
) -> None:
    # The services ignore unknown variables, so a misspelt name would silently do nothing.
    pipeline = spec(
        ingest={"tokensSecret": "tokens"},
        kafka={
            **BASE["kafka"],
            "credentialsSecret": "kafka",
            "securityProtocol": "SASL_SSL",
            "saslMechanism": "SCRAM-SHA-512",
        },
    )
    settings = _settings_class(component)
    names = [n for n in env(pipeline, component) if n.startswith("FLEET_")]
    unknown = [
        n
        for n in names
        if not _field_path_exists(settings, n.removeprefix("FLEET_").lower().split("__"))
    ]
    assert names and unknown == []


@pytest.mark.parametrize("component", list(Component), ids=[c.value for c in Component])
def test_the_rendered_environment_is_valid_settings_for_the_service(
    component: Component, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = spec(ingest={"tokensSecret": "tokens"}, tracing={"otlpEndpoint": "http://j:4317"})
    for item in env_for(OWNER, pipeline, component):
        # Secrets resolve to something of the right shape; the rest is used as rendered.
        value = item.get("value") or (
            "postgresql://fleetpipe@db/fleetpipe" if item["name"].endswith("DSN") else "+15550100"
        )
        monkeypatch.setenv(item["name"], value)
    settings: Any = _settings_class(component)()
    if component is Component.INGEST:
        assert settings.grpc_port == 50051
        assert str(settings.auth.tokens_file) == "/etc/fleetpipe/ingest/tokens.yaml"
    if component is Component.STORAGE_WRITER:
        assert str(settings.lake.path) == "/cold"
        assert settings.hot_retention_days == 5
    if component is Component.NOTIFICATION:
        assert settings.routing.min_severity.value == "critical"
    if component is Component.KPIS:
        assert settings.group_id == "fleetpipe-kpis"
        assert (settings.window_s, settings.hop_s) == (900, 60)


def test_ingest_reads_the_registry_that_decides_whose_a_vehicle_is() -> None:
    pipeline = spec(ingest={"unknownVehicles": "reject"})
    volumes = manifests(pipeline)[("Deployment", "fleet-ingest")]["spec"]["template"]["spec"][
        "volumes"
    ]
    assert {"name": "registry", "configMap": {"name": "fleet-registry"}} in volumes
    assert env(pipeline, Component.INGEST)["FLEET_UNKNOWN_VEHICLES"] == "reject"
