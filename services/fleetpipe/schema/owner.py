"""The schema's owner brings the whole schema up to date: every component's migrations, then
the service roles' grants.

Each component ships its own migrations (``fleetpipe.core.db``); the services and commands
that keep state apply theirs at start when they log in as the owner. With a role per service
(``fleetpipe.core.dbroles``) none of them may, so the owner runs this first, once per release:
the services then find their schema current and start. Idempotent: a second run applies
nothing and grants the same rights again (a release that adds a table adds its grants).
"""

from __future__ import annotations

from dataclasses import dataclass

from fleetpipe.core import dbroles
from fleetpipe.core.db import (
    Migration,
    PostgresSettings,
    connect,
    load_migrations,
    migrate_when_ready,
)

APPLICATION_NAME = "fleetpipe-db-migrate"

# Every component that ships migrations, in the order they are applied: the storage writer's
# hot store first (the others' tables stand beside it, none refers to another's).
COMPONENTS = (
    ("storage", "fleetpipe.storage_writer"),
    ("notification", "fleetpipe.notification"),
    ("erasure", "fleetpipe.erasure"),
    ("deadletters", "fleetpipe.deadletters"),
)


@dataclass(frozen=True)
class ComponentOutcome:
    component: str
    shipped: list[Migration]
    applied: list[Migration]


@dataclass(frozen=True)
class SchemaOutcome:
    schema: str
    components: list[ComponentOutcome]
    grants: int | None  # statements run; None when no roles were given


def migrate_schema(
    owner: PostgresSettings,
    roles: dbroles.DatabaseRoles | None,
    *,
    timeout_s: float = 300.0,
    components: tuple[tuple[str, str], ...] = COMPONENTS,
) -> SchemaOutcome:
    """Wait for the database (up to ``timeout_s``), apply what each component lacks as
    ``owner``, then, when ``roles`` are given, grant them their share."""
    outcomes = []
    for component, package in components:
        shipped = load_migrations(package)
        applied = migrate_when_ready(
            owner,
            application_name=APPLICATION_NAME,
            component=component,
            migrations=shipped,
            timeout_s=timeout_s,
            # This is the owner's run: a refusal means the login is not the owner's.
            await_owner=False,
        )
        outcomes.append(ComponentOutcome(component, shipped, applied))
    grants = None
    if roles is not None:
        with connect(owner, application_name=APPLICATION_NAME, autocommit=True) as conn:
            grants = dbroles.grant(conn, owner.schema_name, roles)
    return SchemaOutcome(owner.schema_name, outcomes, grants)
