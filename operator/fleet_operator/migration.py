"""What the schema's migration Job says about the pipeline: the ``SchemaMigrated`` condition
and the Events of its changes. Pure; the Job itself is rendered by render_migration.py.

Ready waits for ``SchemaMigrated``: the services with roles of their own start meanwhile but
wait, not ready, for the schema the Job brings up to date.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fleet_operator.decisions import NORMAL, WARNING, Event, Prior
from fleet_operator.status import SCHEMA_MIGRATED, Condition

MIGRATED = "Migrated"
MIGRATION_RUNNING = "MigrationRunning"
MIGRATION_FAILED = "MigrationFailed"  # when the Job's own condition gives no reason
DATABASE_LOGINS_UNREADABLE = "DatabaseLoginsUnreadable"
AT_SERVICE_START = "AtServiceStart"


def _job_condition(job: Mapping[str, Any], type_: str) -> Mapping[str, Any] | None:
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("type") == type_ and c.get("status") == "True":
            return dict(c)
    return None


def schema_condition(name: str, job: Mapping[str, Any] | None) -> Condition:
    """``SchemaMigrated`` from the Job named ``name`` as read (None: not there yet)."""
    if job is None:
        return Condition.of(SCHEMA_MIGRATED, False, MIGRATION_RUNNING, f"Job {name} not created")
    if _job_condition(job, "Complete") is not None:
        return Condition.of(SCHEMA_MIGRATED, True, MIGRATED, f"Job {name} completed")
    failed = _job_condition(job, "Failed")
    if failed is not None:
        said = str(failed.get("message") or "").strip()
        return Condition.of(
            SCHEMA_MIGRATED,
            False,
            str(failed.get("reason") or MIGRATION_FAILED),
            f"Job {name} failed{': ' + said if said else ''}; its pod's log says why "
            f"(kubectl logs job/{name})",
        )
    status = job.get("status") or {}
    active, failures = int(status.get("active") or 0), int(status.get("failed") or 0)
    return Condition.of(
        SCHEMA_MIGRATED,
        False,
        MIGRATION_RUNNING,
        f"Job {name} has not completed ({active} running, {failures} failed attempts)",
    )


def not_needed() -> Condition:
    return Condition.of(
        SCHEMA_MIGRATED,
        True,
        AT_SERVICE_START,
        "no role per service (storage.serviceDatabaseSecrets unset): each service migrates "
        "its part of the schema at start",
    )


def logins_unreadable(message: str) -> Condition:
    return Condition.of(SCHEMA_MIGRATED, False, DATABASE_LOGINS_UNREADABLE, message)


def schema_events(prior: Prior, after: Condition, *, created: str | None) -> list[Event]:
    """A Job created (``created``: its name and image), completed or failed: said once."""
    events = []
    if created is not None:
        events.append(Event(NORMAL, "MigrationStarted", created))
    before = prior.condition(SCHEMA_MIGRATED)
    if before.get("reason") == after.reason and before.get("message") == after.message:
        return events
    if after.reason == MIGRATED:
        events.append(Event(NORMAL, "SchemaMigrated", after.message))
    elif after.status == "False" and after.reason != MIGRATION_RUNNING:
        events.append(Event(WARNING, after.reason, after.message))
    return events
