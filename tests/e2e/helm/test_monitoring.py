"""The chart's monitoring for clusters with the Prometheus operator, checked against the real
thing: the operator's own CRDs (from its Go module) applied to the session's API server accept
the rendered ServiceMonitors and PrometheusRule by server-side apply — and refuse a malformed
one — and every rule's expression parses with Prometheus' own PromQL parser.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from fleetpipe_dev.devtools import manifests
from fleetpipe_dev.testing import wait_for
from support.kube import Kube
from support.monitoring import operator_crds, parse_promql

pytestmark = pytest.mark.e2e

NAMESPACE = "fp-monitoring"
SERVICES = ("ingest", "enrichment", "detection", "notification", "storage-writer", "kpis")
ON = ("monitoring.serviceMonitors.enabled=true", "monitoring.prometheusRule.enabled=true")


def _render(*values: str) -> str:
    args = ["template", manifests.RELEASE, str(manifests.CHART), "--namespace", NAMESPACE]
    args += ["--show-only", "templates/monitoring/servicemonitors.yaml"]
    args += ["--show-only", "templates/monitoring/prometheusrule.yaml"]
    for value in values:
        args += ["--set", value]
    return manifests.helm(*args)


def _established(kube: Kube, name: str) -> bool:
    found = kube.json("get", "crd", name)
    conditions = found.get("status", {}).get("conditions") or []
    return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)


@pytest.fixture(scope="module")
def monitoring_crds(kube: Kube) -> Kube:
    for path in operator_crds():
        kube.run("apply", "--server-side", "--field-manager=fleetpipe-tests", "-f", str(path))
    names = ("servicemonitors.monitoring.coreos.com", "prometheusrules.monitoring.coreos.com")
    wait_for(
        lambda: all(_established(kube, n) for n in names),
        timeout=60,
        what="the Prometheus operator's CRDs established",
    )
    if kube.run("get", "namespace", NAMESPACE, check=False).returncode != 0:
        kube.run("create", "namespace", NAMESPACE)
    return kube


def test_monitoring_is_off_by_default() -> None:
    everything = manifests.helm("template", manifests.RELEASE, str(manifests.CHART))
    kinds = {d["kind"] for d in yaml.safe_load_all(everything) if d}
    assert not kinds & {"ServiceMonitor", "PrometheusRule"}, "a cluster may lack their CRDs"


def test_the_crds_accept_the_charts_service_monitors_and_rules_by_server_side_apply(
    monitoring_crds: Kube,
) -> None:
    kube = monitoring_crds
    rendered = _render(*ON, "monitoring.serviceMonitors.labels.release=prometheus")
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    monitors = ["ServiceMonitor"] * len(SERVICES)
    assert sorted(d["kind"] for d in docs) == ["PrometheusRule", *monitors]
    result = kube.run(
        "apply", "--server-side", "--field-manager=helm", "-n", NAMESPACE, "-f", "-",
        stdin=rendered,
    )  # fmt: skip
    assert result.stdout.count("serverside-applied") == len(docs), result.stdout

    monitors = kube.json("get", "servicemonitors", "-n", NAMESPACE)["items"]
    by_component = {
        m["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"]: m for m in monitors
    }
    assert set(by_component) == set(SERVICES)
    for component, monitor in by_component.items():
        spec = monitor["spec"]
        assert spec["jobLabel"] == "app.kubernetes.io/component"
        assert spec["selector"]["matchLabels"]["app.kubernetes.io/managed-by"] == (
            "fleetpipe-operator"
        ), component
        assert spec["endpoints"] == [
            {"port": "http", "path": "/metrics", "interval": "15s", "scrapeTimeout": "10s"}
        ]
        assert monitor["metadata"]["labels"]["release"] == "prometheus"
    (rule,) = kube.json("get", "prometheusrules", "-n", NAMESPACE)["items"]
    alerts = {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]}
    assert alerts == {
        "FleetPipeConsumerLagGrowing",
        "FleetPipeDeadLetters",
        "FleetPipeStageDown",
        "FleetPipeStageNotReady",
        "FleetPipeNotificationFailures",
    }


def test_the_crds_refuse_a_service_monitor_the_operator_could_not_use(
    monitoring_crds: Kube,
) -> None:
    docs = [d for d in yaml.safe_load_all(_render(*ON)) if d]
    monitor: dict[str, Any] = next(d for d in docs if d["kind"] == "ServiceMonitor")
    monitor["metadata"]["name"] = "broken"
    monitor["spec"]["endpoints"][0]["interval"] = "every now and then"
    result = monitoring_crds.run(
        "apply", "--server-side", "-n", NAMESPACE, "-f", "-",
        stdin=yaml.safe_dump(monitor), check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "interval" in result.stderr, result.stderr


def _expressions(rendered: str) -> list[str]:
    rule = next(d for d in yaml.safe_load_all(rendered) if d and d["kind"] == "PrometheusRule")
    return [r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]]


def test_every_rule_expression_parses_with_prometheus_own_parser() -> None:
    expressions = _expressions(_render(*ON))
    assert len(expressions) == 5
    parsed = parse_promql(expressions)
    assert parsed.code == 0, parsed.results
    assert [r["type"] for r in parsed.results] == ["vector"] * 5
    # The parser is no rubber stamp: a broken expression is refused, named, with the reason.
    broken = parse_promql([*expressions[:1], "sum by (job) (rate(fleetpipe_deadletters_total[5m])"])
    assert broken.code == 1
    assert "error" not in broken.results[0]
    assert "unclosed left parenthesis" in broken.results[1]["error"]
