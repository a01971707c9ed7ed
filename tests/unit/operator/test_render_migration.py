"""The schema's migration Job as the operator renders it when the services have roles of
their own (``spec.storage.serviceDatabaseSecrets``)."""

from __future__ import annotations

from typing import Any

import pytest

from fleet_operator.objects import Owner
from fleet_operator.render_migration import (
    IMAGE_ANNOTATION,
    migration_job,
    needs_migration,
    role_secrets,
)
from fleet_operator.spec import FleetPipelineSpec, parse_spec
from fleetpipe.core.dbroles import DatabaseRoles

pytestmark = pytest.mark.unit

OWNER = Owner(name="fleet", namespace="fleets", uid="u-1")
ROLES = DatabaseRoles(storage_writer="writer", notification="notifier", reader="fleetpipe")
LOGINS = {"serviceDatabaseSecrets": {"storageWriter": "db-writer", "notification": "db-notifier"}}


def _spec(storage: dict[str, Any] | None = None, **extra: Any) -> FleetPipelineSpec:
    return parse_spec(
        {
            "fleet": {"vehicles": 1000},
            "kafka": {"bootstrapServers": "kafka:9092"},
            "notification": {"twilioSecret": "twilio"},
            "storage": {"databaseSecret": "db-owner", **(LOGINS if storage is None else storage)},
            **extra,
        }
    )


def _container(job: dict[str, Any]) -> dict[str, Any]:
    (container,) = job["spec"]["template"]["spec"]["containers"]
    return dict(container)


def test_only_a_pipeline_with_roles_per_service_needs_the_job() -> None:
    assert needs_migration(_spec())
    assert not needs_migration(_spec({}))


def test_the_job_runs_db_migrate_as_the_owner_and_names_the_roles_to_grant() -> None:
    job = migration_job(OWNER, _spec(), ROLES)
    assert job["apiVersion"] == "batch/v1" and job["kind"] == "Job"
    assert job["metadata"]["name"].startswith("fleet-migrate-")
    assert job["metadata"]["namespace"] == "fleets"
    assert job["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    assert job["metadata"]["labels"]["app.kubernetes.io/component"] == "migrate"
    assert job["metadata"]["annotations"][IMAGE_ANNOTATION] == "fleetpipe:0.1.0"
    container = _container(job)
    assert container["command"] == ["fleetpipe"]
    assert container["args"][:2] == ["db", "migrate"]
    env = {e["name"]: e for e in container["env"]}
    # The owner's Secret, by reference only; never a service's.
    assert env["FLEET_POSTGRES__DSN"]["valueFrom"]["secretKeyRef"] == {
        "name": "db-owner",
        "key": "dsn",
    }
    assert "value" not in env["FLEET_POSTGRES__DSN"]
    assert env["FLEET_DATABASE_ROLES__STORAGE_WRITER"]["value"] == "writer"
    assert env["FLEET_DATABASE_ROLES__NOTIFICATION"]["value"] == "notifier"
    assert env["FLEET_DATABASE_ROLES__READER"]["value"] == "fleetpipe"


def test_the_job_runs_restricted_once_per_attempt_and_ends() -> None:
    job = migration_job(OWNER, _spec(), ROLES)
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert _container(job)["securityContext"]["readOnlyRootFilesystem"] is True
    assert job["spec"]["backoffLimit"] >= 1
    assert job["spec"]["activeDeadlineSeconds"] > 0


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"image": {"tag": "0.2.0"}}, id="an-upgrade"),
        pytest.param({"storage": {"databaseSecret": "other-owner", **LOGINS}}, id="another-owner"),
    ],
)
def test_a_new_image_or_owner_is_a_new_job(change: dict[str, Any]) -> None:
    before = migration_job(OWNER, _spec(), ROLES)["metadata"]["name"]
    storage = change.pop("storage", None)
    after = migration_job(OWNER, _spec(storage, **change), ROLES)["metadata"]["name"]
    assert after != before
    assert after.startswith("fleet-migrate-")


def test_new_role_names_are_a_new_job_and_the_same_spec_the_same_job() -> None:
    first = migration_job(OWNER, _spec(), ROLES)
    again = migration_job(OWNER, _spec(), ROLES)
    renamed = migration_job(OWNER, _spec(), ROLES.model_copy(update={"reader": "console"}))
    assert first == again
    assert renamed["metadata"]["name"] != first["metadata"]["name"]


def test_a_long_pipeline_name_still_makes_a_valid_job_name() -> None:
    owner = Owner(name="f" * 60, namespace="fleets", uid="u-1")
    name = migration_job(owner, _spec(), ROLES)["metadata"]["name"]
    assert len(name) <= 63
    assert "-migrate-" in name


def test_each_role_is_the_login_its_workload_uses() -> None:
    assert role_secrets(_spec()) == {
        "storage_writer": "db-writer",
        "notification": "db-notifier",
        "reader": "db-owner",  # no console login of its own: the owner's
    }
    with_console = _spec(console={"enabled": True, "databaseSecret": "db-console"})
    assert role_secrets(with_console)["reader"] == "db-console"
    only_writer = _spec({"serviceDatabaseSecrets": {"storageWriter": "db-writer"}})
    assert role_secrets(only_writer)["notification"] == "db-owner"
