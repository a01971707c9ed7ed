"""A rotated Kafka password in the pipeline's Secret is what the operator's next reconcile logs in
with, on a real API server and the session broker's SASL_SSL listener: its admin clients are
keyed on the login's secret values, not on the settings' JSON, where a password is masked."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from fleetpipe_dev.testing import wait_for
from support.security import SaslLogin
from support.servers import BrokerHandle

pytestmark = pytest.mark.e2e

FAILED = ("KafkaUnreachable", "TopicsFailed")


def test_a_rotated_password_in_the_secret_is_used_on_the_next_reconcile(
    kube: Any, operator: Any, make_pipeline: Any, kafka: BrokerHandle, sasl_login: SaslLogin
) -> None:
    good = kafka.security.passwords()["operator"]
    pipeline = make_pipeline(kafka=sasl_login.kafka_spec())
    ns, name = pipeline.namespace, pipeline.name
    kube.wait_ready(ns, name, timeout=120)

    # The Secret now holds a password the broker does not know. A client cached under the
    # masked settings would still be logged in with the old one and keep the pipeline Ready;
    # the next reconcile must log in afresh, and fail.
    wrong = secrets.token_urlsafe(24)
    sasl_login.set_login("operator", wrong)

    def refused() -> dict[str, Any] | None:
        ready = kube.condition(ns, name, "Ready")
        return ready if ready.get("reason") in FAILED else None

    failed = wait_for(refused, timeout=90, what="the pipeline to fail the wrong password")
    assert failed["status"] == "False", failed

    # Rotated back to the broker's password: Ready again, with no password in the status.
    sasl_login.set_login("operator", good)

    def ready_again() -> dict[str, Any] | None:
        ready = kube.condition(ns, name, "Ready")
        return ready if ready.get("status") == "True" else None

    wait_for(ready_again, timeout=120, what="the pipeline to log in with the restored password")
    status = str(kube.pipeline(ns, name)["status"])
    assert good not in status and wrong not in status
