"""spec.kafka.access Managed: the operator sets each service's SCRAM login from its Secret and
applies exactly the ACLs fleetpipe.core.access gives it on the pipeline's names, records them in
the status, removes the ones no longer needed and, at deletion, all of them."""

from __future__ import annotations

from typing import Any

import pytest

from fleet_operator.kafka_access import wanted_rules
from fleet_operator.render import topics_for
from fleet_operator.spec import SpecError, parse_spec
from fleet_operator.status import KAFKA_ACCESS_APPLIED
from fleetpipe.core.access import AccessRule, Operation, Pattern, Principal, Resource
from support.pipelinespecs import scram_spec, with_kafka

from .conftest import World

pytestmark = pytest.mark.unit

LOGINS = {
    "ingest": "k-ingest",
    "enrichment": "k-enrichment",
    "detection": "k-detection",
    "notification": "k-notification",
    "storageWriter": "k-storage-writer",
    "kpis": "k-kpis",
}
SPEC = scram_spec(
    kafka={
        "replicationFactor": 1,
        "credentialsSecret": "kafka-operator",
        "topicSuffix": "blue",
        "serviceCredentials": LOGINS,
        "access": "Managed",
    }
)
# The fake API server's Secret values are "<secret>-<key>".
INGEST = "k-ingest-username"


def _spec(**extra: Any) -> dict[str, Any]:
    return {**SPEC, **extra}


@pytest.fixture
def managed(world: World) -> World:
    world.kube.secrets |= {"kafka-operator", *LOGINS.values()}
    return world


def test_each_service_gets_its_login_and_exactly_its_acls_on_the_pipelines_names(
    managed: World,
) -> None:
    ref = managed.kube.add_pipeline("fleet", _spec())
    managed.reconcile(ref)
    assert managed.kafka.scram_logins == [
        {f"{s}-username": f"{s}-password" for s in LOGINS.values()}
    ]
    ingest = {r for r in managed.kafka.acls if r.principal == INGEST}
    assert ingest == {
        AccessRule(INGEST, Resource.TOPIC, name, Pattern.LITERAL, Operation.WRITE)
        for name in _topics("raw", "deadletter")
    }
    groups = {r.name for r in managed.kafka.acls if r.resource is Resource.GROUP}
    assert groups == {
        f"fleetpipe-{s}.blue"
        for s in ("enrichment", "detection", "notification", "storage-writer", "kpis")
    }
    status = managed.kube.status(ref)
    assert len(status["kafkaAccess"]["acls"]) == len(managed.kafka.acls)
    assert status["kafkaAccess"]["logins"] == len(LOGINS)
    condition = managed.kube.condition(ref, KAFKA_ACCESS_APPLIED)
    assert condition["status"] == "True", condition
    said = str(status) + str(managed.events.posted)
    assert not [s for s in LOGINS.values() if f"{s}-password" in said], said


def _topics(*fields: str) -> set[str]:
    names = topics_for(parse_spec(SPEC)).model_dump()
    return {names[f] for f in fields}


def test_logins_are_sent_again_only_when_a_secret_changes(managed: World) -> None:
    ref = managed.kube.add_pipeline("fleet", _spec())
    managed.reconcile(ref)
    managed.reconcile(ref)
    assert len(managed.kafka.scram_logins) == 1


def test_acls_no_longer_needed_are_removed_and_deletion_removes_the_rest(
    managed: World,
) -> None:
    ref = managed.kube.add_pipeline("fleet", _spec())
    managed.reconcile(ref)
    kpis = {r for r in managed.kafka.acls if r.principal == "k-kpis-username"}
    assert kpis
    managed.kube.pipelines[("ns", "fleet")]["spec"] = _spec(kpis={"enabled": False})
    managed.reconcile(ref)
    assert not kpis & managed.kafka.acls
    expected = wanted_rules(
        parse_spec(_spec(kpis={"enabled": False})),
        {p: f"{LOGINS[k]}-username" for p, k in _PRINCIPALS.items() if k != "kpis"},
    )
    assert managed.kafka.acls == set(expected)

    obj = managed.kube.pipelines[("ns", "fleet")]
    managed.reconciler.delete(ref, obj["spec"], status=obj["status"])
    assert managed.kafka.acls == set()
    assert "KafkaAccessRemoved" in managed.events.reasons()


_PRINCIPALS = {
    Principal.INGEST: "ingest",
    Principal.ENRICHMENT: "enrichment",
    Principal.DETECTION: "detection",
    Principal.NOTIFICATION: "notification",
    Principal.STORAGE_WRITER: "storageWriter",
    Principal.KPIS: "kpis",
}


def test_a_refused_alter_is_a_clear_condition_and_the_rest_is_reconciled(
    managed: World,
) -> None:
    managed.kafka.refuse_access = "Kafka principal User:op may not create ACLs; grant ALTER"
    ref = managed.kube.add_pipeline("fleet", _spec())
    managed.reconcile(ref)
    condition = managed.kube.condition(ref, KAFKA_ACCESS_APPLIED)
    assert condition["status"] == "False"
    assert condition["reason"] == "KafkaAccessRefused"
    assert "User:op" in condition["message"] and "ALTER" in condition["message"]
    assert managed.kube.condition(ref, "Degraded")["reason"] == "KafkaAccessRefused"
    assert any(kind == "Deployment" for kind, _ in managed.kube.objects), "children not applied"


def test_a_service_on_the_operators_own_login_is_refused(managed: World) -> None:
    logins = {**LOGINS, "ingest": "kafka-operator"}
    ref = managed.kube.add_pipeline("fleet", with_kafka(SPEC, serviceCredentials=logins))
    managed.reconcile(ref)
    condition = managed.kube.condition(ref, KAFKA_ACCESS_APPLIED)
    assert condition["status"] == "False"
    assert "operator's own login" in condition["message"]
    assert managed.kafka.acls == set()


def test_unmanaged_access_applies_nothing(managed: World) -> None:
    ref = managed.kube.add_pipeline("fleet", with_kafka(SPEC, access="Unmanaged"))
    managed.reconcile(ref)
    assert managed.kafka.acls == set() and managed.kafka.scram_logins == []
    assert "kafkaAccess" not in managed.kube.status(ref)


@pytest.mark.parametrize(
    ("kafka", "said"),
    [
        pytest.param({"saslMechanism": "PLAIN"}, "SCRAM", id="not-scram"),
        pytest.param(
            {"serviceCredentials": {k: v for k, v in LOGINS.items() if k != "detection"}},
            "missing: detection",
            id="a-service-on-the-shared-login",
        ),
    ],
)
def test_managed_access_needs_a_scram_login_per_service(kafka: dict[str, Any], said: str) -> None:
    with pytest.raises(SpecError, match=said):
        parse_spec(with_kafka(SPEC, **kafka))
