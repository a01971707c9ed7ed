"""The schema's migration Job, when the services log in to PostgreSQL with roles of their own.
Pure, as render.py.

With ``storage.serviceDatabaseSecrets`` no service may create or alter anything, so the owner
(``storage.databaseSecret``) migrates the schema and grants the roles their share first:
``fleetpipe db migrate`` in a Job of the pipeline's image. A Job's pod template cannot change,
so its name carries a digest of the template (the image, the owner's Secret, the role names):
an upgrade or a changed login is a new Job, and so migrates again, while a reconcile that
changes nothing finds the same Job done. The services start meanwhile and wait for the schema
(``fleetpipe.core.db.migrate_when_ready``); the pipeline is not Ready until the Job completed.
Without ``serviceDatabaseSecrets`` there is no Job: the services log in as the owner and
migrate their own component at start, as before.
"""

from __future__ import annotations

import hashlib
import json

from fleet_operator.objects import (
    Manifest,
    Owner,
    child_metadata,
    container_security,
    env_secret,
    env_value,
    labels,
    pod_security,
)
from fleet_operator.spec import FleetPipelineSpec
from fleetpipe.core.dbroles import DatabaseRoles

COMPONENT = "migrate"
# The image the Job migrated with, for a person reading the Job (its name has only a digest).
IMAGE_ANNOTATION = "fleetpipe.io/image"
ARGS = ["db", "migrate"]
DEFAULT_RESOURCES: Manifest = {
    "requests": {"cpu": "100m", "memory": "128Mi"},
    "limits": {"memory": "256Mi"},
}
# The command waits this long for PostgreSQL to accept connections (a database starting with
# the pipeline); a few retries cover a database that drops it, and an hour ends a stuck one.
WAIT_S = 300
BACKOFF_LIMIT = 4
ACTIVE_DEADLINE_S = 3600
# A Job's name is a label value on its pods: 63 characters at most.
_NAME_MAX = 63
_DIGEST = 8


def needs_migration(spec: FleetPipelineSpec) -> bool:
    """Whether the services log in with roles that may not migrate."""
    return spec.storage.service_database_secrets is not None


def role_secrets(spec: FleetPipelineSpec) -> dict[str, str]:
    """The Secret (key ``dsn``) each role logs in with → the role's ``DatabaseRoles`` field:
    its name is the login's user. A service without a Secret of its own, and the console
    without ``console.databaseSecret``, log in as the owner (granting the owner is a no-op)."""
    own = spec.storage.service_database_secrets
    owner_secret = spec.storage.database_secret
    reader = spec.console.database_secret if spec.console.enabled else None
    return {
        "storage_writer": (own.storage_writer if own else None) or owner_secret,
        "notification": (own.notification if own else None) or owner_secret,
        "reader": reader or owner_secret,
    }


def _env(spec: FleetPipelineSpec, roles: DatabaseRoles) -> list[Manifest]:
    return [
        # The owner's login: the only one that may create and alter the schema's objects.
        env_secret("FLEET_POSTGRES__DSN", spec.storage.database_secret, "dsn"),
        env_value("FLEET_DATABASE_ROLES__STORAGE_WRITER", roles.storage_writer),
        env_value("FLEET_DATABASE_ROLES__NOTIFICATION", roles.notification),
        env_value("FLEET_DATABASE_ROLES__READER", roles.reader),
    ]


def _pod(owner: Owner, spec: FleetPipelineSpec, roles: DatabaseRoles) -> Manifest:
    container: Manifest = {
        "name": COMPONENT,
        "image": spec.image.reference,
        "imagePullPolicy": spec.image.pull_policy,
        "command": ["fleetpipe"],
        "args": [*ARGS, "--timeout", str(WAIT_S)],
        "env": _env(spec, roles),
        "resources": DEFAULT_RESOURCES,
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],  # noqa: S108 - in the pod
        "securityContext": container_security(),
    }
    return {
        "metadata": {"labels": labels(owner, COMPONENT)},
        "spec": {
            "restartPolicy": "Never",
            # The job never talks to the Kubernetes API.
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "securityContext": pod_security(fs_group=False),
            "containers": [container],
            "volumes": [{"name": "tmp", "emptyDir": {}}],
        },
    }


def job_name(owner: Owner, template: Manifest) -> str:
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:_DIGEST]
    stem = owner.name[: _NAME_MAX - len(COMPONENT) - _DIGEST - 2]
    return f"{stem}-{COMPONENT}-{digest}"


def migration_job(owner: Owner, spec: FleetPipelineSpec, roles: DatabaseRoles) -> Manifest:
    """The Job migrating ``spec``'s schema and granting ``roles`` (whose names the reconcile
    read from the logins' Secrets)."""
    template = _pod(owner, spec, roles)
    metadata = child_metadata(owner, job_name(owner, template), COMPONENT)
    metadata["annotations"] = {IMAGE_ANNOTATION: spec.image.reference}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata,
        "spec": {
            "backoffLimit": BACKOFF_LIMIT,
            "activeDeadlineSeconds": ACTIVE_DEADLINE_S,
            "template": template,
        },
    }
