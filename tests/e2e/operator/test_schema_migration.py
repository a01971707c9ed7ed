"""The schema's migration Job on a real API server: with a database role per service the
operator runs ``fleetpipe db migrate`` as the schema's owner, and ``SchemaMigrated`` (and
Ready) follow the Job.

kwok's nodes run no container, so what the Job's pod would do is written here: a
ResourceQuota of no pods holds the Job's pod back, and the test writes the Job's status as
the Job controller would write a failed one; once the quota goes, kwok completes the next
Job's pod and the real Job controller marks it Complete.
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from typing import Any

import pytest

from fleet_operator.render_migration import IMAGE_ANNOTATION
from fleetpipe_dev.testing import wait_for

pytestmark = pytest.mark.e2e

LOGINS = {"storageWriter": "db-writer", "notification": "db-notifier"}
ROLES = {"db-writer": "fleet_writer", "db-notifier": "fleet_notifier"}


def _jobs(kube: Any, ns: str, pipeline: str) -> dict[str, dict[str, Any]]:
    selector = f"fleetpipe.io/pipeline={pipeline},app.kubernetes.io/component=migrate"
    found = kube.json("get", "jobs", "-n", ns, "-l", selector)["items"]
    return {j["metadata"]["name"]: j for j in found}


def _schema(kube: Any, ns: str, name: str) -> dict[str, Any]:
    conditions = (kube.pipeline(ns, name).get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == "SchemaMigrated"), {})


def _condition_becomes(kube: Any, ns: str, name: str, status: str, reason: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        found = _schema(kube, ns, name)
        return found if (found.get("status"), found.get("reason")) == (status, reason) else None

    return wait_for(check, timeout=90, interval=0.5, what=f"SchemaMigrated {status} {reason}")


def _fail(kube: Any, ns: str, job: str) -> None:
    """The status the Job controller writes when a Job's attempts are spent."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    said = {
        "reason": "BackoffLimitExceeded",
        "message": "Job has reached the specified backoff limit",
    }
    # Its startTime stays the controller's (set when it first synced the Job).
    status = {
        "status": {
            "failed": 5,
            "conditions": [
                {"type": "FailureTarget", "status": "True", "lastTransitionTime": now, **said},
                {"type": "Failed", "status": "True", "lastTransitionTime": now, **said},
            ],
        }
    }
    kube.run(
        "patch", "job", job, "-n", ns, "--subresource=status", "--type=merge",
        "-p", json.dumps(status),
    )  # fmt: skip


def test_the_owner_migrates_in_a_job_and_the_pipeline_follows_it(
    kube: Any, operator: Any, namespace: str, make_pipeline: Any
) -> None:
    passwords = []
    for secret, role in ROLES.items():
        password = secrets.token_hex(16)
        passwords.append(password)
        kube.run(
            "create", "secret", "generic", secret, "-n", namespace,
            f"--from-literal=dsn=postgresql://{role}:{password}@db:5432/fleet",
        )  # fmt: skip
    quota = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "no-pods", "namespace": namespace},
        "spec": {"hard": {"pods": "0"}},
    }
    kube.run("apply", "-f", "-", stdin=json.dumps(quota))

    pipeline = make_pipeline(fleet={"vehicles": 2000}, storage={"serviceDatabaseSecrets": LOGINS})
    ns, name = pipeline.namespace, pipeline.name
    jobs = wait_for(lambda: _jobs(kube, ns, name), timeout=60, interval=0.5, what="the Job")
    ((first, job),) = jobs.items()
    assert first.startswith(f"{name}-migrate-")
    uid = kube.pipeline(ns, name)["metadata"]["uid"]
    assert job["metadata"]["ownerReferences"][0]["uid"] == uid
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["fleetpipe"]
    assert container["args"][:2] == ["db", "migrate"]
    env = {e["name"]: e for e in container["env"]}
    assert env["FLEET_POSTGRES__DSN"]["valueFrom"]["secretKeyRef"] == {
        "name": "fleetpipe-db",
        "key": "dsn",
    }
    assert env["FLEET_DATABASE_ROLES__STORAGE_WRITER"]["value"] == "fleet_writer"
    assert env["FLEET_DATABASE_ROLES__NOTIFICATION"]["value"] == "fleet_notifier"
    image = job["metadata"]["annotations"][IMAGE_ANNOTATION]
    assert image == container["image"]

    running = _condition_becomes(kube, ns, name, "False", "MigrationRunning")
    assert first in running["message"]

    _fail(kube, ns, first)
    failed = _condition_becomes(kube, ns, name, "False", "BackoffLimitExceeded")
    assert "backoff limit" in failed["message"] and f"kubectl logs job/{first}" in failed["message"]
    ready = next(c for c in kube.pipeline(ns, name)["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False"

    # Pods may run again, and an upgrade migrates again in a Job of its own.
    kube.run("delete", "resourcequota", "no-pods", "-n", ns)
    patch = {"spec": {"image": {"tag": "0.2.0"}}}
    kube.run("patch", "fp", name, "-n", ns, "--type=merge", "-p", json.dumps(patch))

    def replaced() -> str | None:
        names = list(_jobs(kube, ns, name))
        return names[0] if names and names != [first] and first not in names else None

    second = wait_for(replaced, timeout=90, interval=0.5, what="the upgrade's Job alone")
    assert _jobs(kube, ns, name)[second]["metadata"]["annotations"][IMAGE_ANNOTATION].endswith(
        ":0.2.0"
    )
    done = _condition_becomes(kube, ns, name, "True", "Migrated")
    assert second in done["message"]
    obj = kube.wait_ready(ns, name, timeout=180)

    reasons = {
        (e["type"], e["reason"])
        for e in kube.json("get", "events", "-n", ns)["items"]
        if e["involvedObject"].get("name") == name
    }
    assert {
        ("Normal", "MigrationStarted"),
        ("Warning", "BackoffLimitExceeded"),
        ("Normal", "SchemaMigrated"),
    } <= reasons
    seen = json.dumps([obj, list(_jobs(kube, ns, name).values())]) + operator.process.log()
    assert not [p for p in passwords if p in seen]
