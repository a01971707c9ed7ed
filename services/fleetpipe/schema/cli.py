"""``fleetpipe db migrate``: the schema's owner migrates every component and grants the
service roles their share."""

from __future__ import annotations

from typing import Annotated

import psycopg
import typer
from pydantic import ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from fleetpipe.core.db import DatabaseUnavailable, MigrationError, PostgresSettings
from fleetpipe.core.dbroles import DatabaseRoles
from fleetpipe.core.errors import ConfigError, configuration_problem
from fleetpipe.schema.owner import SchemaOutcome, migrate_schema

db_app = typer.Typer(
    help="The pipeline's PostgreSQL schema, as its owner.",
    no_args_is_help=True,
)


class _Settings(BaseSettings):
    """The owner's login and, for the grants, the services' role names."""

    model_config = SettingsConfigDict(
        env_prefix="FLEET_", env_nested_delimiter="__", frozen=True, extra="ignore"
    )

    postgres: PostgresSettings = PostgresSettings()
    # Unset: no role per service, the services log in as the owner and nothing is granted.
    database_roles: DatabaseRoles | None = None


def _report(outcome: SchemaOutcome) -> list[str]:
    lines = []
    for c in outcome.components:
        if c.applied:
            names = ", ".join(f"{m.version:04d}_{m.name}" for m in c.applied)
            lines.append(f"{c.component}: applied {names}")
        else:
            lines.append(f"{c.component}: current ({len(c.shipped)} migrations)")
    return lines


def migrate_command(
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout",
            min=0,
            help="How long to wait for PostgreSQL to accept connections, in seconds.",
        ),
    ] = 300.0,
) -> None:
    """Apply every component's missing migrations to the schema, then grant the service
    roles their share.

    Run as the schema's owner: FLEET_POSTGRES__DSN logs in as the role that owns (or will
    create) FLEET_POSTGRES__SCHEMA_NAME (default fleetpipe). With the services' roles named
    (FLEET_DATABASE_ROLES__STORAGE_WRITER, __NOTIFICATION, __READER; an unnamed one takes
    its default, fleetpipe_storage_writer, fleetpipe_notification, fleetpipe_reader) it then
    grants each what its service needs and nothing else; the roles must exist. Safe to run
    again: what ran is not applied twice, and the grants are the same.
    """
    try:
        settings = _Settings()
        outcome = migrate_schema(settings.postgres, settings.database_roles, timeout_s=timeout)
    except ValidationError as exc:
        typer.echo(f"error: {configuration_problem(exc)}", err=True)
        raise typer.Exit(2) from exc
    except (ConfigError, MigrationError, DatabaseUnavailable) as exc:
        # libpq's messages run over lines (a hint under the error): one line each.
        typer.echo(f"error: {' '.join(str(exc).split())}", err=True)
        raise typer.Exit(1) from exc
    except psycopg.Error as exc:
        # A grant refused (a role that does not exist, a login that is not the owner): the
        # server's one-line message, without the statement echoed under it.
        said = exc.diag.message_primary or str(exc).splitlines()[0]
        typer.echo(f"error: granting on schema {settings.postgres.schema_name}: {said}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"schema {outcome.schema}:")
    for line in _report(outcome):
        typer.echo(f"  {line}")
    if outcome.grants is None:
        typer.echo("  grants: none (no service roles named)")
    else:
        roles = ", ".join(settings.database_roles.names()) if settings.database_roles else ""
        typer.echo(f"  grants: {outcome.grants} statements for {roles}")


def _paragraphs(text: str) -> str:
    # The docstring's lines joined, its paragraphs kept: typer would keep every line break.
    return "\n\n".join(" ".join(p.split()) for p in text.split("\n\n"))


db_app.command("migrate", help=_paragraphs(migrate_command.__doc__ or ""))(migrate_command)
