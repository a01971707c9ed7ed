"""``fleetpipe query <name>``: the hot store's analytics in the terminal or as JSON, CSV, GeoJSON.

Every command takes the same window (``--hours`` or ``--since``/``--until``), ``--fleet`` and
``--format``; what it reads comes from :mod:`fleetpipe.query.statements`, the same statements
the fleet console serves.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, TypeVar, get_type_hints

import psycopg
import typer
from pydantic_settings import BaseSettings, SettingsConfigDict
from rich.console import Console
from rich.table import Table

from fleetpipe.core.db import PostgresSettings, connect
from fleetpipe.query import execute, formats, statements
from fleetpipe.query.errors import BadQuery, Forbidden, NotFound
from fleetpipe.query.execute import Result
from fleetpipe.query.formats import Format
from fleetpipe.query.scope import BBox, Scope
from fleetpipe.query.statements import Geometry, Statement, Status
from fleetpipe.query.window import Window, resolve

_Asked = TypeVar("_Asked")  # what a command's own options ask for

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
        configured = PostgresSettings.model_validate({"dsn": _LocalStack().dsn})
    changes: dict[str, Any] = {}
    if dsn:
        changes["dsn"] = dsn
    if schema:
        changes["schema_name"] = schema
    return PostgresSettings.model_validate({**configured.model_dump(), **changes})


_TIME_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"]
Hours = Annotated[
    float | None, typer.Option(help="look back this many hours from --until (or now)")
]
Since = Annotated[
    datetime | None, typer.Option(formats=_TIME_FORMATS, help="from this time (UTC if no zone)")
]
Until = Annotated[
    datetime | None, typer.Option(formats=_TIME_FORMATS, help="up to this time (default: now)")
]
Fleets = Annotated[list[str] | None, typer.Option("--fleet", help="only this fleet (repeatable)")]
Limit = Annotated[int, typer.Option(min=1, max=statements.MAX_LIMIT, help="at most this many rows")]
Dsn = Annotated[
    str | None, typer.Option(help="PostgreSQL DSN (default: FLEET_POSTGRES__DSN, else dev stack)")
]
Schema = Annotated[str | None, typer.Option(help="schema (default: FLEET_POSTGRES__SCHEMA_NAME)")]
Fmt = Annotated[Format, typer.Option("--format", help="table, json, csv or geojson")]
AsJson = Annotated[bool, typer.Option("--json", help="the same as --format json")]


@contextmanager
def _session(dsn: str | None, schema: str | None) -> Iterator[psycopg.Connection[Any]]:
    """A connection, with the store's failures said in one line and a non-zero exit."""
    console = Console(stderr=True)
    settings = _postgres(dsn, schema)
    try:
        with connect(settings, application_name="fleetpipe-query") as conn:
            yield conn
    except psycopg.OperationalError as exc:
        console.print(f"[red]cannot reach PostgreSQL[/]: {exc}")
        raise typer.Exit(2) from exc
    except psycopg.errors.UndefinedTable as exc:
        console.print(
            f"[red]schema {settings.schema_name} lacks a table this query reads[/] "
            f"({exc.diag.message_primary}): has the storage writer run against it?"
        )
        raise typer.Exit(2) from exc


def _refuse(exc: Exception) -> typer.Exit:
    message = str(exc)
    if isinstance(exc, BadQuery):
        message = f"--{exc.field.replace('_', '-')}: {exc.reason}"
    Console(stderr=True).print(f"[red]{message}[/]")
    return typer.Exit(1 if isinstance(exc, NotFound) else 2)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S%z")
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(formats.plain(value))


def _table(title: str, result: Result) -> Table | str:
    if not result.rows:
        return f"{title}: no rows"
    table = Table(*result.columns, title=title, title_justify="left")
    for row in result.rows:
        table.add_row(*(_cell(row.get(c)) for c in result.columns))
    return table


def _emit(title: str, result: Result, fmt: Format) -> None:
    if fmt is Format.JSON:
        sys.stdout.write(formats.to_json(formats.records(result.rows)) + "\n")
    elif fmt is Format.CSV:
        sys.stdout.write(formats.to_csv(result.columns, result.rows))
    elif fmt is Format.GEOJSON:
        if not formats.has_position(result.columns):
            raise _refuse(
                BadQuery("format", f"{title.split(':', maxsplit=1)[0]} has no positions to map")
            )
        geometry = result.geometry if result.geometry is not Geometry.NONE else Geometry.POINTS
        sys.stdout.write(formats.to_json(formats.to_geojson(result.rows, geometry)) + "\n")
    else:
        Console().print(_table(title, result))


@dataclass(frozen=True)
class _Query:
    """What a command asks: the statement for a window and scope, its doc (the title's line) and
    the window used when none is given (None: all time)."""

    build: Callable[[Window, Scope], Statement]
    doc: str | None
    default_hours: float | None


@dataclass(frozen=True)
class _Explain:
    """What ``alert`` asks: one alert explained, with its details read in the window only when
    one is given (else around its episode)."""

    alert_id: str


def _common(
    hours: Hours = None,
    since: Since = None,
    until: Until = None,
    fleet: Fleets = None,
    fmt: Fmt = Format.TABLE,
    as_json: AsJson = False,
    dsn: Dsn = None,
    schema: Schema = None,
) -> None:
    """The options every windowed command takes, after its own (declared once, here)."""


@dataclass(frozen=True)
class _Common:
    """The values of :func:`_common`'s options, as a command was given them."""

    hours: float | None
    since: datetime | None
    until: datetime | None
    fleet: list[str] | None
    fmt: Format
    as_json: bool
    dsn: str | None
    schema: str | None

    @property
    def format(self) -> Format:
        return Format.JSON if self.as_json else self.fmt

    @property
    def window_given(self) -> bool:
        return self.hours is not None or self.since is not None or self.until is not None

    def window_and_scope(self, default_hours: float | None) -> tuple[Window, Scope]:
        """The window (``default_hours`` back when no bound is given) and the fleets' scope;
        a bad value is refused, naming its option."""
        try:
            window = resolve(
                hours=self.hours, since=self.since, until=self.until, default_hours=default_hours
            )
            return window, Scope().narrow(self.fleet)
        except (BadQuery, Forbidden) as exc:
            raise _refuse(exc) from exc


def _signature_of(function: Callable[..., Any]) -> list[inspect.Parameter]:
    hints = get_type_hints(function, include_extras=True)
    return [
        p.replace(annotation=hints[p.name], kind=inspect.Parameter.KEYWORD_ONLY)
        for p in inspect.signature(function).parameters.values()
    ]


_COMMON = _signature_of(_common)


def _command(
    name: str, run: Callable[[str, _Asked, _Common], None]
) -> Callable[[Callable[..., _Asked]], Callable[..., None]]:
    """Register ``ask`` (its own options -> what it asks) as ``fleetpipe query NAME``, with the
    common options added to its signature for typer; ``run`` answers it."""

    def register(ask: Callable[..., _Asked]) -> Callable[..., None]:
        own = _signature_of(ask)
        own_names = {p.name for p in own}

        def command(**options: Any) -> None:
            common = _Common(**{k: v for k, v in options.items() if k not in own_names})
            try:
                asked = ask(**{k: v for k, v in options.items() if k in own_names})
            except BadQuery as exc:
                raise _refuse(exc) from exc
            run(name, asked, common)

        command.__signature__ = inspect.Signature([*own, *_COMMON])  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in [*own, *_COMMON]}
        command.__doc__ = ask.__doc__
        query_app.command(name)(command)
        return command

    return register


def _run(name: str, asked: _Query, common: _Common) -> None:
    window, scope = common.window_and_scope(asked.default_hours)
    try:
        statement = asked.build(window, scope)
    except (BadQuery, Forbidden) as exc:
        raise _refuse(exc) from exc
    with _session(common.dsn, common.schema) as conn:
        result = execute.fetch(conn, statement)
    help_line = (asked.doc or name).strip().splitlines()[0]
    _emit(f"{name}: {help_line}", result, common.format)


def _query_command(name: str) -> Callable[[Callable[..., _Query]], Callable[..., None]]:
    """Register ``ask`` (its own options -> a _Query) as ``fleetpipe query NAME``."""
    return _command(name, _run)


def _windowed(
    name: str,
    query: Callable[..., Statement],
    *,
    default_hours: float | None = 24.0,
    default_limit: int = 50,
) -> None:
    """Register a command whose only options are the common ones and --limit."""

    def ask(limit: Limit = default_limit) -> _Query:
        return _Query(
            lambda window, scope: query(window, scope, limit=limit), query.__doc__, default_hours
        )

    window_help = f"default: the last {default_hours:g} h" if default_hours else "default: all"
    ask.__doc__ = f"{(query.__doc__ or name).strip().splitlines()[0]} ({window_help})"
    _query_command(name)(ask)


_windowed("alerts-per-hour", statements.alerts_per_hour)
_windowed("trips", statements.trips)
_windowed("scorecards", statements.scorecards)
_windowed("utilisation", statements.utilisation, default_hours=None)
_windowed("self-driving", statements.self_driving)
_windowed("kpis", statements.kpis)
_windowed("deadletters", statements.dead_letters)
_windowed("notifications", statements.notifications)


@_query_command("trace")
def trace_command(
    vehicle: Annotated[str, typer.Argument(help="vehicle id")],
    limit: Limit = 3600,
) -> _Query:
    """A vehicle's trace, oldest first (default: the last hour)."""
    return _Query(
        lambda window, scope: statements.trace(vehicle, window, scope, limit=limit),
        statements.trace.__doc__,
        1.0,
    )


@_query_command("latest")
def latest_command(
    status: Annotated[
        list[Status] | None, typer.Option(help="only vehicles in this status (repeatable)")
    ] = None,
    bbox: Annotated[
        str | None, typer.Option(help="only inside west,south,east,north (degrees)")
    ] = None,
    limit: Limit = 1000,
) -> _Query:
    """Every vehicle's latest position and status (default: however long ago it was heard)."""
    box = BBox.parse(bbox) if bbox else None
    return _Query(
        lambda window, scope: statements.latest(
            window, scope, statuses=status or (), bbox=box, limit=limit
        ),
        statements.latest.__doc__,
        None,
    )


@_query_command("alerts")
def alerts_command(
    open_only: Annotated[
        bool, typer.Option("--open", help="only episodes not resolved (default window: all)")
    ] = False,
    rule: Annotated[str | None, typer.Option(help="only this rule")] = None,
    severity: Annotated[str | None, typer.Option(help="only this severity")] = None,
    vehicle: Annotated[str | None, typer.Option(help="only this vehicle")] = None,
    limit: Limit = 100,
) -> _Query:
    """Alert episodes started in the window, newest first (default: the last 24 h)."""
    return _Query(
        lambda window, scope: statements.alerts(
            window,
            scope,
            open_only=open_only,
            rule=rule,
            severity=severity,
            vehicle=vehicle,
            limit=limit,
        ),
        statements.alerts.__doc__,
        None if open_only else 24.0,
    )


@_query_command("kpi-windows")
def kpi_windows_command(
    dimension: Annotated[
        str,
        typer.Option(help="fleet, model or vehicle_type; 'all' for every one"),
    ] = "fleet",
    limit: Limit = 50,
) -> _Query:
    """The KPI stage's windows, newest first (default: the last 1 h)."""
    wanted = None if dimension == "all" else dimension
    return _Query(
        lambda window, scope: statements.kpi_windows(window, scope, dimension=wanted, limit=limit),
        statements.kpi_windows.__doc__,
        1.0,
    )


def _run_explain(name: str, asked: _Explain, common: _Common) -> None:
    window, scope = common.window_and_scope(None)
    with _session(common.dsn, common.schema) as conn:
        try:
            found = execute.explain(
                conn, asked.alert_id, scope, window if common.window_given else None
            )
        except NotFound as exc:
            raise _refuse(NotFound(f"alert {asked.alert_id}: {exc}")) from exc
    fmt = common.format
    if fmt is Format.JSON:
        sys.stdout.write(formats.to_json(found) + "\n")
        return
    sections = {
        "alert": Result(list(found["alert"]), [found["alert"]]),
        "threshold": _pairs(found["threshold"]),
        "observed": _pairs(found["observed"]),
        "transitions": _result(found["transitions"]),
        "events": _result(found["events"]),
        "notifications": _result(found["notifications"]),
    }
    if fmt is Format.CSV:
        for section, result in sections.items():
            sys.stdout.write(f"# {section}\n{formats.to_csv(result.columns, result.rows)}")
        return
    if fmt is Format.GEOJSON:
        collection = formats.to_geojson(found["events"], Geometry.LINE)
        collection["features"] += formats.to_geojson([found["alert"]], Geometry.POINTS)["features"]
        sys.stdout.write(formats.to_json(collection) + "\n")
        return
    console = Console()
    for section, result in sections.items():
        console.print(_table(section, result))


@_command("alert", _run_explain)
def alert_command(alert_id: Annotated[str, typer.Argument(help="the alert's id")]) -> _Explain:
    """One alert explained: rule and threshold, events around it (default: its episode ±2 min,
    else the window), its transitions and notifications."""
    return _Explain(alert_id)


def _pairs(values: dict[str, Any]) -> Result:
    return Result(["name", "value"], [{"name": k, "value": v} for k, v in values.items()])


def _result(rows: list[dict[str, Any]]) -> Result:
    return Result(list(rows[0]) if rows else [], rows)
