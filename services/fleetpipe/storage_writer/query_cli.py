"""``fleetpipe query <name>``: the hot store's analytics as tables in the terminal."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

import psycopg
import typer
from pydantic_settings import BaseSettings, SettingsConfigDict
from rich.console import Console
from rich.table import Table

from fleetpipe.core.db import PostgresSettings, connect
from fleetpipe.storage_writer.queries import QUERIES, run

query_app = typer.Typer(
    help="Analytics over the hot store (the storage writer's PostgreSQL).",
    no_args_is_help=True,
)


class _QuerySettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="FLEET_", env_nested_delimiter="__", frozen=True, extra="ignore"
    )
    postgres: PostgresSettings | None = None


class _LocalStack(BaseSettings):
    """Where ``fleetpipe dev up`` serves its database (it reads the same FLEET_DEV_ variable)."""

    model_config = SettingsConfigDict(env_prefix="FLEET_DEV_", frozen=True, extra="ignore")
    postgres_port: int = 15432

    @property
    def dsn(self) -> str:
        return f"postgresql://fleetpipe@127.0.0.1:{self.postgres_port}/fleetpipe"


def _postgres(dsn: str | None, schema: str | None) -> PostgresSettings:
    configured = _QuerySettings().postgres
    if configured is None:
        # Not configured: the local dev stack's database.
        configured = PostgresSettings(dsn=_LocalStack().dsn)  # type: ignore[arg-type]
    changes: dict[str, Any] = {}
    if dsn:
        changes["dsn"] = dsn
    if schema:
        changes["schema_name"] = schema
    return PostgresSettings.model_validate({**configured.model_dump(), **changes})


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S%z")
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, Decimal):
        return f"{value:,}"
    return str(value)


def _show(
    name: str,
    vehicle: str,
    hours: int,
    limit: int,
    dsn: str | None,
    schema: str | None,
    as_json: bool,
) -> None:
    console = Console()
    settings = _postgres(dsn, schema)
    try:
        with connect(settings, application_name="fleetpipe-query") as conn:
            columns, rows = run(conn, name, vehicle=vehicle, hours=hours, limit=limit)
    except psycopg.OperationalError as exc:
        console.print(f"[red]cannot reach PostgreSQL[/]: {exc}")
        raise typer.Exit(2) from exc
    except psycopg.errors.UndefinedTable as exc:
        console.print(
            f"[red]schema {settings.schema_name} has no analytics views[/]: "
            "has the storage writer run against it?"
        )
        raise typer.Exit(2) from exc
    if as_json:
        console.print_json(
            json.dumps([dict(zip(columns, row, strict=True)) for row in rows], default=str)
        )
        return
    table = Table(*columns, title=f"{name}: {QUERIES[name].help}", title_justify="left")
    for row in rows:
        table.add_row(*(_cell(v) for v in row))
    console.print(table if rows else f"{name}: no rows")


Limit = Annotated[int, typer.Option(min=1, max=100_000, help="at most this many rows")]
Dsn = Annotated[
    str | None, typer.Option(help="PostgreSQL DSN (default: FLEET_POSTGRES__DSN, else dev stack)")
]
Schema = Annotated[str | None, typer.Option(help="schema (default: FLEET_POSTGRES__SCHEMA_NAME)")]
AsJson = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def _register(name: str) -> None:
    query = QUERIES[name]
    if query.needs_vehicle:

        def vehicle_command(
            vehicle: Annotated[str, typer.Argument(help="vehicle id")],
            limit: Limit = 3600,
            dsn: Dsn = None,
            schema: Schema = None,
            as_json: AsJson = False,
        ) -> None:
            _show(name, vehicle, 1, limit, dsn, schema, as_json)

        query_app.command(name, help=query.help)(vehicle_command)
        return

    def command(
        hours: Annotated[int, typer.Option(min=1, help="look back this many hours")] = 24,
        limit: Limit = 50,
        dsn: Dsn = None,
        schema: Schema = None,
        as_json: AsJson = False,
    ) -> None:
        _show(name, "", hours, limit, dsn, schema, as_json)

    query_app.command(name, help=query.help)(command)


for _name in QUERIES:
    _register(_name)
