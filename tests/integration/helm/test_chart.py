"""The Helm chart as helm itself sees it: lint, rendering, the values schema, k8s/ in sync.

These run the cached helm binary (``scripts/build-go-tools.sh helm``) and no server: rendering
is a pure function of the chart and its values.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from fleet_operator.spec import Component, parse_spec
from fleetpipe_dev.devtools import manifests
from fleetpipe_loadtest.report import parse_profile

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
CHART = manifests.CHART
EVERYTHING = manifests.EVERY_OPTION
WORKLOADS = {"Deployment", "StatefulSet", "Job"}


def render(*values: str, namespace: str = "fleetpipe-system") -> list[dict[str, Any]]:
    args = ["template", "fleetpipe", str(CHART), "--namespace", namespace]
    for value in values:
        args += ["--set", value]
    return [doc for doc in yaml.safe_load_all(manifests.helm(*args)) if doc]


def named(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} rendered"
    return found[0]


def pod_specs(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        f"{d['kind']}/{d['metadata']['name']}": d["spec"]["template"]["spec"]
        for d in docs
        if d["kind"] in WORKLOADS
    }


def test_helm_is_built_where_the_setup_puts_it() -> None:
    # A missing binary is a setup bug, not a reason to skip: the message names the script.
    path = manifests.find_helm()
    assert "v4." in manifests.helm("version", "--short"), path


@pytest.mark.parametrize(
    "values",
    [
        pytest.param((), id="defaults"),
        pytest.param(EVERYTHING, id="everything-on"),
        pytest.param(("operator.watchNamespace=fleet", "networkPolicy.enabled=false"), id="ns"),
    ],
)
def test_helm_lint_is_clean(values: tuple[str, ...]) -> None:
    args = ["lint", "--strict", str(CHART)]
    for value in values:
        args += ["--set", value]
    out = manifests.helm(*args)
    assert "1 chart(s) linted, 0 chart(s) failed" in out
    assert "[WARNING]" not in out and "[ERROR]" not in out, out


def test_defaults_install_the_operator_its_rbac_and_network_policies_only() -> None:
    kinds = sorted(f"{d['kind']}/{d['metadata']['name']}" for d in render())
    assert kinds == [
        "ClusterRole/fleetpipe-operator",
        "ClusterRoleBinding/fleetpipe-operator",
        "Deployment/fleetpipe-operator",
        "NetworkPolicy/fleetpipe-console",
        "NetworkPolicy/fleetpipe-console-reads",
        "NetworkPolicy/fleetpipe-ingest",
        "NetworkPolicy/fleetpipe-operator",
        "NetworkPolicy/fleetpipe-pipelines",
        "ServiceAccount/fleetpipe-operator",
    ]


def test_every_pod_runs_as_non_root_with_a_read_only_root_and_no_capabilities() -> None:
    specs = pod_specs(render(*EVERYTHING))
    # operator, kafka, postgresql, jaeger, mosquitto, loadtest, the uninstall hook
    assert len(specs) == 7, sorted(specs)
    for where, spec in specs.items():
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, where
        assert pod["runAsUser"] > 0, where
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, where
        for container in spec["containers"] + spec.get("initContainers", []):
            ctx = container["securityContext"]
            assert ctx["readOnlyRootFilesystem"] is True, where
            assert ctx["allowPrivilegeEscalation"] is False, where
            assert ctx["capabilities"] == {"drop": ["ALL"]}, where
            assert not ctx.get("privileged"), where
            # A read-only root still needs a scratch folder for Python, Kafka and PostgreSQL.
            assert any(m["mountPath"] == "/tmp" for m in container["volumeMounts"]), where


def test_the_dev_database_takes_its_server_settings_from_the_values() -> None:
    def args(*values: str) -> list[str]:
        docs = render("dev.postgresql.enabled=true", *values)
        return list(
            named(docs, "StatefulSet", "fleetpipe-postgresql")["spec"]["template"]["spec"][
                "containers"
            ][0]["args"]
        )

    default = args()
    assert default[0] == "postgres"
    assert "shared_buffers=512MB" in default
    assert default.count("-c") == len(default[1:]) // 2
    assert "shared_buffers=2GB" in args("dev.postgresql.settings.shared_buffers=2GB")
    assert "work_mem=64MB" in args("dev.postgresql.settings.work_mem=64MB")


def test_the_chart_holds_no_secret_values_only_references() -> None:
    docs = render(*EVERYTHING)
    assert not [d for d in docs if d["kind"] == "Secret"]
    for where, spec in pod_specs(docs).items():
        for container in spec["containers"]:
            for env in container.get("env", []):
                if any(word in env["name"] for word in ("PASSWORD", "TOKEN", "SECRET", "DSN")):
                    assert "secretKeyRef" in env.get("valueFrom", {}), (where, env)


def test_the_operator_runs_its_console_script_with_probes_on_its_health_port() -> None:
    operator = named(render(), "Deployment", "fleetpipe-operator")
    spec = operator["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}  # never two operators at once
    container = spec["template"]["spec"]["containers"][0]
    assert container["command"] == ["fleetpipe-operator"]
    assert container["image"] == "fleetpipe:0.1.0"  # appVersion, the CRD's spec.image default
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["FLEET_OPERATOR_HEALTH_PORT"] == "8080"
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert spec["template"]["spec"]["serviceAccountName"] == "fleetpipe-operator"


def test_every_command_the_chart_and_the_operator_run_is_a_console_script_of_the_image() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    ours = [
        c
        for spec in pod_specs(render(*EVERYTHING)).values()
        for c in spec["containers"]
        if c["image"].startswith("fleetpipe:")
    ]
    commands = {c["command"][0] for c in ours}
    # What render.py gives the pipelines' Deployments: fleetpipe-<component>.
    commands |= {f"fleetpipe-{c.value}" for c in Component}
    assert commands <= set(scripts), commands - set(scripts)


def test_watch_namespace_confines_the_operator_to_a_role_in_that_namespace() -> None:
    docs = render("operator.watchNamespace=fleet")
    cluster_rules = named(docs, "ClusterRole", "fleetpipe-operator")["rules"]
    assert {r for rule in cluster_rules for r in rule["resources"]} == {
        "customresourcedefinitions",
        "namespaces",
    }
    role = named(docs, "Role", "fleetpipe-operator")
    assert role["metadata"]["namespace"] == "fleet"
    assert {r for rule in role["rules"] for r in rule["resources"]} >= {
        "fleetpipelines",
        "fleetpipelines/status",
        "deployments",
        "secrets",
    }
    binding = named(docs, "RoleBinding", "fleetpipe-operator")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "fleetpipe-operator", "namespace": "fleetpipe-system"}
    ]
    container = named(docs, "Deployment", "fleetpipe-operator")["spec"]["template"]["spec"][
        "containers"
    ][0]
    assert {"name": "FLEET_OPERATOR_NAMESPACE", "value": "fleet"} in container["env"]


def test_the_cluster_wide_rules_delete_only_old_stages_and_old_migrations_never_list_secrets() -> (
    None
):
    rules = named(render(), "ClusterRole", "fleetpipe-operator")["rules"]
    deletes = set()
    for rule in rules:
        assert "*" not in rule["verbs"], rule
        if "delete" in rule["verbs"]:
            deletes |= {(group, r) for group in rule["apiGroups"] for r in rule["resources"]}
        if "secrets" in rule["resources"]:
            assert rule["verbs"] == ["get"]
    # spec.kpis.enabled: false removes the KPI stage's Deployment and Service, and a new image
    # replaces the schema's migration Job (a Job cannot change); nothing else.
    assert deletes == {("apps", "deployments"), ("", "services"), ("batch", "jobs")}


def test_the_optional_pipeline_uses_the_chart_image_and_the_in_chart_broker() -> None:
    docs = render("pipeline.create=true", "dev.kafka.enabled=true", "image.tag=abc123")
    pipeline = named(docs, "FleetPipeline", "fleet")
    spec = pipeline["spec"]
    assert spec["kafka"] == {
        "bootstrapServers": "fleetpipe-kafka.fleetpipe-system.svc:9092",
        "replicationFactor": 1,
    }
    assert spec["image"] == {
        "repository": "fleetpipe",
        "tag": "abc123",
        "pullPolicy": "IfNotPresent",
    }
    parsed = parse_spec(spec)  # what the operator makes of it
    assert parsed.image.reference == "fleetpipe:abc123"
    assert parsed.kafka.replication_factor == 1
    broker = named(docs, "ConfigMap", "fleetpipe-kafka")["data"]["server.properties"]
    assert "advertised.listeners=PLAINTEXT://fleetpipe-kafka.fleetpipe-system.svc:9092" in broker
    assert "process.roles=broker,controller" in broker


def test_a_pipeline_without_brokers_is_refused_naming_the_value() -> None:
    with pytest.raises(manifests.HelmError, match=r"pipeline\.spec\.kafka\.bootstrapServers"):
        render("pipeline.create=true")


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        pytest.param("image.pullPolicy=Sometimes", "pullPolicy", id="pull-policy"),
        pytest.param("podSecurityContext.runAsNonRoot=false", "runAsNonRoot", id="root"),
        pytest.param(
            "containerSecurityContext.readOnlyRootFilesystem=false",
            "readOnlyRootFilesystem",
            id="writable-root",
        ),
        pytest.param("operator.logLevel=LOUD", "logLevel", id="log-level"),
        pytest.param("operatr.logLevel=INFO", "operatr", id="typo"),
        pytest.param("loadtest.processes=0", "processes", id="no-processes"),
        pytest.param("loadtest.profile=5000", "profile", id="profile-without-seconds"),
        pytest.param("dev.kafka.clusterId=short", "clusterId", id="cluster-id"),
    ],
)
def test_the_values_schema_refuses_bad_values_naming_them(value: str, complaint: str) -> None:
    with pytest.raises(manifests.HelmError, match=complaint):
        render(value)


def test_the_load_test_job_runs_the_load_driver_against_the_pipeline() -> None:
    job = named(
        render("loadtest.enabled=true", "dev.kafka.enabled=true"), "Job", "fleetpipe-loadtest"
    )
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["fleetpipe", "loadtest", "run"]
    args = container["args"]
    assert "--target=fleet-ingest:50051" in args
    assert "--kafka=fleetpipe-kafka.fleetpipe-system.svc:9092" in args
    secrets = {
        e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e
    }
    plain = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    assert plain == {"MPLCONFIGDIR": "/tmp/matplotlib"}  # the report's charts, read-only root
    assert secrets == {
        "FLEET_LOADTEST_TOKEN": {"name": "fleetpipe-loadtest", "key": "token"},
        "FLEET_LOADTEST_DSN": {"name": "fleetpipe-db", "key": "dsn"},
    }
    profile = next(a for a in args if a.startswith("--profile=")).removeprefix("--profile=")
    assert [s.vehicles for s in parse_profile(profile)] == [5000, 10000, 5000]
    # Every flag the Job passes must be one `fleetpipe loadtest run` knows: an unknown option
    # fails the parse even with --help.
    result = subprocess.run(
        [sys.executable, "-m", "fleetpipe.cli", "loadtest", "run", *args, "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_load_test_job_needs_the_pipelines_brokers() -> None:
    with pytest.raises(manifests.HelmError, match=r"loadtest\.kafka"):
        render("loadtest.enabled=true")


def test_every_template_is_rendered_into_k8s() -> None:
    rendered = {t for output in manifests.OUTPUTS for t in output.show_only}
    templates = {
        str(p.relative_to(CHART))
        for p in (CHART / "templates").rglob("*.yaml")
        # The FleetPipeline: k8s/samples/ holds the hand-written ones; the uninstall hook
        # only exists for Helm's uninstall of that FleetPipeline.
        if p.name not in ("fleetpipeline.yaml", "uninstall-hook.yaml")
    }
    assert templates == rendered


def test_the_manifests_in_k8s_are_what_the_chart_renders() -> None:
    assert manifests.check_drift() == [], "k8s/ differs from helm/fleetpipe: run `make manifests`"


def test_k8s_keeps_the_crd_of_the_chart_byte_for_byte() -> None:
    copy = (ROOT / "k8s" / "crds" / "fleetpipelines.yaml").read_text()
    source = (CHART / "crds" / "fleetpipelines.yaml").read_text()
    assert copy.endswith(source)
