"""spec.kafka.access Managed on a real API server and the session broker's SASL_SSL listener
with KRaft's StandardAuthorizer: the operator, logged in as a principal of its own allowed ALTER
on the cluster, sets each service's SCRAM login from its Secret and applies exactly the ACLs
fleetpipe.core.access gives it. Real clients logging in as those services find they may do
their part and are refused the rest; a new login name moves the ACLs; deleting the pipeline
takes them away; an operator principal without ALTER gets a condition that says so."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from fleetpipe.core.access import (
    Pattern,
    Principal,
    access_manager_rules,
    access_rules,
)
from fleetpipe.core.acls import apply_acls, delete_acls, upsert_scram_users
from fleetpipe.core.errors import KafkaError
from fleetpipe.core.kafka import Admin, KafkaException, build_admin
from fleetpipe.core.readers import OFFSET_BEGINNING, build_reader
from fleetpipe.core.settings import KafkaSettings, Topics
from fleetpipe_dev.testing import wait_for
from support.security import SaslLogin, produce_one, produce_refusal, read_refusal
from support.servers import BrokerHandle

pytestmark = pytest.mark.e2e

# How the producer and the reader say the broker refused them a topic.
WRITE_REFUSED = "Topic authorization failed"
READ_REFUSED = "TOPIC_AUTHORIZATION_FAILED"
# spec.kafka.serviceCredentials keys of the stages the sample runs (its console is off).
SERVICES = ("ingest", "enrichment", "detection", "notification", "storageWriter", "kpis")


@pytest.fixture
def admin(kafka: BrokerHandle) -> Admin:
    """The session broker's administrator (its plaintext listener's super user)."""
    return build_admin(kafka.settings, timeout_s=30)


@pytest.fixture
def access_operator(admin: Admin) -> Iterator[tuple[str, str]]:
    """An operator principal of the test's own: its rules, and ALTER on the cluster."""
    user, password = f"op-{uuid.uuid4().hex[:8]}", secrets.token_hex(16)
    rules = [
        *access_rules(Principal.OPERATOR, Topics(), pattern=Pattern.PREFIXED, user=user),
        *access_manager_rules(user),
    ]
    upsert_scram_users(admin, {user: password})
    apply_acls(admin, rules)
    yield user, password
    delete_acls(admin, rules)


def _service_logins(login: SaslLogin, prefix: str) -> dict[str, tuple[str, str]]:
    """A login Secret per service (``kafka-<key>``): key → (user, password)."""
    found = {}
    for key in SERVICES:
        user, password = f"{prefix}-{key.lower()}", secrets.token_hex(16)
        login.set_login(user, password, secret=f"kafka-{key.lower()}")
        found[key] = (user, password)
    return found


def _access(kube: Any, ns: str, name: str, status: str) -> dict[str, Any] | None:
    found = kube.condition(ns, name, "KafkaAccessApplied")
    return found if found.get("status") == status else None


def _produces(kafka: KafkaSettings, topic: str) -> bool:
    try:
        produce_one(kafka, topic)
    except (KafkaError, KafkaException):
        return False
    return True


def _refused_to_produce(kafka: KafkaSettings, topic: str) -> str | None:
    try:
        return produce_refusal(kafka, topic)
    except AssertionError:
        return None


def _reads_a_record(kafka: KafkaSettings, topic: str) -> bool:
    reader = build_reader(kafka, client_id="access-test", read_committed=False)
    try:
        partitions = reader.partitions(topic, timeout_s=10)
        reader.assign(topic, dict.fromkeys(partitions, OFFSET_BEGINNING))
        return any(m.error() is None for m in reader.consume(100, 5.0))
    except KafkaError:
        return False
    finally:
        reader.close()


def test_managed_access_grants_each_service_its_part_and_takes_it_back(
    kube: Any,
    operator: Any,
    make_pipeline: Any,
    kafka: BrokerHandle,
    sasl_login: SaslLogin,
    access_operator: tuple[str, str],
) -> None:
    security = kafka.security
    sasl_login.set_login(*access_operator)
    prefix = f"s{uuid.uuid4().hex[:8]}"
    logins = _service_logins(sasl_login, prefix)
    credentials = {key: f"kafka-{key.lower()}" for key in SERVICES}
    pipeline = make_pipeline(
        kafka=sasl_login.kafka_spec(access="Managed", serviceCredentials=credentials)
    )
    ns, name, topics = pipeline.namespace, pipeline.name, pipeline.topics
    applied = wait_for(
        lambda: _access(kube, ns, name, "True"), timeout=120, what="the ACLs applied"
    )
    assert f"{len(SERVICES)} SCRAM logins" in applied["message"], applied

    def client(key: str) -> KafkaSettings:
        user, password = logins[key]
        return security.client_settings(user, password=password)

    ingest, enrichment = client("ingest"), client("enrichment")
    # Its part: ingest writes raw, enrichment reads it.
    wait_for(lambda: _produces(ingest, topics.raw), timeout=30, what="ingest to write raw")
    assert _reads_a_record(enrichment, topics.raw)
    # And nothing else: ingest may not write nor read enriched; enrichment may not read
    # alerts; ingest may not touch the same topic of a pipeline without the suffix.
    assert WRITE_REFUSED in produce_refusal(ingest, topics.enriched)
    assert READ_REFUSED in read_refusal(ingest, topics.enriched)
    assert READ_REFUSED in read_refusal(enrichment, topics.alerts)
    assert WRITE_REFUSED in produce_refusal(ingest, Topics().raw)

    status = kube.pipeline(ns, name)["status"]
    principals = {acl["principal"] for acl in status["kafkaAccess"]["acls"]}
    assert principals == {user for user, _ in logins.values()}
    said = str(status) + kube.run("get", "events", "-n", ns, "-o", "yaml").stdout
    assert not [p for _, p in logins.values() if p in said], "a password in the status or Events"

    # Ingest logs in under another name now: the old name loses its ACLs, the new one gets them.
    renamed, password = f"{prefix}-ingest-2", secrets.token_hex(16)
    sasl_login.set_login(renamed, password, secret="kafka-ingest-2")
    kube.run(
        "patch", "fleetpipeline", name, "-n", ns, "--type=merge",
        "-p", '{"spec": {"kafka": {"serviceCredentials": {"ingest": "kafka-ingest-2"}}}}',
    )  # fmt: skip

    def moved() -> bool:
        acls = (kube.pipeline(ns, name).get("status") or {}).get("kafkaAccess") or {}
        found = {acl["principal"] for acl in acls.get("acls") or []}
        return renamed in found and logins["ingest"][0] not in found

    wait_for(moved, timeout=120, what="the ACLs moved to the new ingest login")
    ingest_2 = security.client_settings(renamed, password=password)
    wait_for(lambda: _produces(ingest_2, topics.raw), timeout=30, what="the new login to write")
    wait_for(
        lambda: _refused_to_produce(ingest, topics.raw),
        timeout=30,
        what="the old ingest login refused raw",
    )

    # Deleted: every ACL the operator applied goes with the pipeline (its topics stay).
    kube.run("delete", "fleetpipeline", name, "-n", ns, "--wait=false")
    wait_for(
        lambda: kube.run("get", "fleetpipeline", name, "-n", ns, check=False).returncode != 0,
        timeout=120,
        what="the pipeline deleted",
    )
    wait_for(
        lambda: _refused_to_produce(ingest_2, topics.raw),
        timeout=30,
        what="ingest refused raw after the deletion",
    )
    assert READ_REFUSED in read_refusal(enrichment, topics.raw)


def test_an_operator_principal_without_alter_gets_a_condition_naming_the_right(
    kube: Any, operator: Any, make_pipeline: Any, kafka: BrokerHandle, sasl_login: SaslLogin
) -> None:
    prefix = f"s{uuid.uuid4().hex[:8]}"
    logins = _service_logins(sasl_login, prefix)
    credentials = {key: f"kafka-{key.lower()}" for key in SERVICES}
    pipeline = make_pipeline(
        kafka=sasl_login.kafka_spec(access="Managed", serviceCredentials=credentials)
    )
    ns, name = pipeline.namespace, pipeline.name
    refused = wait_for(
        lambda: _access(kube, ns, name, "False"), timeout=120, what="the refusal said"
    )
    # User:operator has its own rules (topics, lag) but not ALTER on the cluster.
    assert refused["reason"] == "KafkaAccessRefused", refused
    assert "User:operator" in refused["message"], refused
    assert "ALTER on the cluster" in refused["message"], refused
    assert kube.condition(ns, name, "Ready")["status"] == "False"
    # The rest of the reconcile went on: the topics are there, and the operator still serves.
    assert Admin(kafka.settings).partitions([pipeline.topics.raw])
    assert operator.healthy()
    status = str(kube.pipeline(ns, name)["status"])
    assert not [p for _, p in logins.values() if p in status]
