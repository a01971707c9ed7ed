"""The schema's migration Job in the reconcile: made when the services have roles of their
own, followed into ``SchemaMigrated`` and Ready, replaced when the image changes."""

from __future__ import annotations

from typing import Any

import pytest

from fleet_operator.ports import PipelineRef

pytestmark = pytest.mark.unit

LOGINS = {"storageWriter": "db-writer", "notification": "db-notifier"}
SPEC: dict[str, Any] = {
    "fleet": {"vehicles": 2000},
    "kafka": {"bootstrapServers": "kafka:9092", "replicationFactor": 1},
    "storage": {"databaseSecret": "db", "serviceDatabaseSecrets": LOGINS},
    "notification": {"twilioSecret": "twilio"},
}
DSNS = {
    "db": "postgresql://fleetpipe:owner-secret@pg:5432/fleet",
    "db-writer": "host=pg user=fleet_writer password=writer-secret dbname=fleet",
    "db-notifier": "postgresql://fleet_notifier:notifier-secret@pg/fleet",
}


def _with_logins(world: Any, spec: dict[str, Any] = SPEC) -> PipelineRef:
    world.kube.secrets |= set(DSNS)
    world.kube.values.update({name: {"dsn": dsn} for name, dsn in DSNS.items()})
    ref: PipelineRef = world.kube.add_pipeline("fleet", spec)
    return ref


def _jobs(world: Any) -> dict[str, dict[str, Any]]:
    return {name: obj for (kind, name), obj in world.kube.objects.items() if kind == "Job"}


def _finish(world: Any, name: str, type_: str, reason: str = "", message: str = "") -> None:
    condition = {"type": type_, "status": "True", "reason": reason, "message": message}
    world.kube.objects[("Job", name)]["status"] = {"conditions": [condition]}


def test_without_roles_per_service_there_is_no_job_and_nothing_waits(world: Any) -> None:
    ref = world.kube.add_pipeline("fleet", {**SPEC, "storage": {"databaseSecret": "db"}})
    world.reconcile(ref)
    world.kube.roll_out()
    world.reconciler.refresh("ns", "fleet")
    assert _jobs(world) == {}
    schema = world.kube.condition(ref, "SchemaMigrated")
    assert (schema["status"], schema["reason"]) == ("True", "AtServiceStart")
    assert world.kube.condition(ref, "Ready")["status"] == "True"


def test_the_job_grants_the_roles_the_services_log_in_as(world: Any) -> None:
    ref = _with_logins(world)
    world.reconcile(ref)
    (job,) = _jobs(world).values()
    (container,) = job["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["FLEET_DATABASE_ROLES__STORAGE_WRITER"]["value"] == "fleet_writer"
    assert env["FLEET_DATABASE_ROLES__NOTIFICATION"]["value"] == "fleet_notifier"
    assert env["FLEET_DATABASE_ROLES__READER"]["value"] == "fleetpipe"  # the console: owner's
    assert env["FLEET_POSTGRES__DSN"]["valueFrom"]["secretKeyRef"]["name"] == "db"
    # The logins' passwords go nowhere: not in the Job, the status or an Event.
    said = repr(job) + repr(world.kube.status(ref)) + repr(world.events.posted)
    for password in ("owner-secret", "writer-secret", "notifier-secret"):
        assert password not in said


def test_the_pipeline_is_ready_only_once_the_job_completed(world: Any) -> None:
    ref = _with_logins(world)
    world.reconcile(ref)
    world.kube.roll_out()
    world.reconciler.refresh("ns", "fleet")
    (name,) = _jobs(world)
    schema = world.kube.condition(ref, "SchemaMigrated")
    assert (schema["status"], schema["reason"]) == ("False", "MigrationRunning")
    ready = world.kube.condition(ref, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "MigrationRunning")
    assert name in ready["message"]
    assert world.events.reasons().count("MigrationStarted") == 1

    _finish(world, name, "Complete")
    world.reconciler.refresh("ns", "fleet")  # the Job watch reacts at once
    schema = world.kube.condition(ref, "SchemaMigrated")
    assert (schema["status"], schema["reason"]) == ("True", "Migrated")
    assert world.kube.condition(ref, "Ready")["status"] == "True"
    world.reconcile(ref, measure_lag=True)  # a tick: the same Job, nothing new to say
    assert list(_jobs(world)) == [name]
    assert world.events.reasons().count("SchemaMigrated") == 1
    assert world.events.reasons().count("MigrationStarted") == 1


def test_a_failed_job_is_said_with_its_reason_and_keeps_the_pipeline_not_ready(
    world: Any,
) -> None:
    ref = _with_logins(world)
    world.reconcile(ref)
    world.kube.roll_out()
    (name,) = _jobs(world)
    _finish(world, name, "Failed", "BackoffLimitExceeded", "Job has reached the backoff limit")
    world.reconcile(ref, measure_lag=True)
    schema = world.kube.condition(ref, "SchemaMigrated")
    assert (schema["status"], schema["reason"]) == ("False", "BackoffLimitExceeded")
    assert "reached the backoff limit" in schema["message"]
    assert f"kubectl logs job/{name}" in schema["message"]
    ready = world.kube.condition(ref, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "BackoffLimitExceeded")
    warnings = [(t, r) for t, r, _m in world.events.posted if r == "BackoffLimitExceeded"]
    assert warnings == [("Warning", "BackoffLimitExceeded")]
    world.reconcile(ref, measure_lag=True)
    assert world.events.reasons().count("BackoffLimitExceeded") == 1


def test_an_upgrade_migrates_again_with_a_new_job_and_deletes_the_old_one(world: Any) -> None:
    ref = _with_logins(world)
    world.reconcile(ref)
    (old,) = _jobs(world)
    _finish(world, old, "Complete")
    world.kube.update_spec(ref, image={"tag": "0.2.0"})
    world.reconcile(ref)
    (new,) = _jobs(world)
    assert new != old
    assert f"delete Job/{old}" in world.journal.calls
    assert world.kube.condition(ref, "SchemaMigrated")["reason"] == "MigrationRunning"
    started = [m for _t, r, m in world.events.posted if r == "MigrationStarted"]
    assert started[-1] == f"Job {new} runs fleetpipe db migrate with fleetpipe:0.2.0"


def test_turning_roles_per_service_off_removes_the_job(world: Any) -> None:
    ref = _with_logins(world)
    world.reconcile(ref)
    world.kube.update_spec(ref, storage={"databaseSecret": "db"})
    world.reconcile(ref)
    assert _jobs(world) == {}
    assert world.kube.condition(ref, "SchemaMigrated")["reason"] == "AtServiceStart"


@pytest.mark.parametrize(
    ("dsn", "said"),
    [
        pytest.param(None, "needs the key dsn", id="no-dsn-key"),
        pytest.param("host=pg dbname=fleet", "needs the key dsn", id="no-user"),
        pytest.param("host=pg password='writer-secret", "cannot be parsed", id="unparseable"),
    ],
)
def test_a_login_whose_role_cannot_be_read_is_said_and_no_job_runs(
    world: Any, dsn: str | None, said: str
) -> None:
    ref = _with_logins(world)
    world.kube.values["db-writer"] = {} if dsn is None else {"dsn": dsn}
    world.reconcile(ref)
    assert _jobs(world) == {}
    schema = world.kube.condition(ref, "SchemaMigrated")
    assert (schema["status"], schema["reason"]) == ("False", "DatabaseLoginsUnreadable")
    assert "db-writer" in schema["message"] and said in schema["message"]
    assert "writer-secret" not in repr(world.kube.status(ref)) + repr(world.events.posted)
    assert world.kube.condition(ref, "Ready")["status"] == "False"
