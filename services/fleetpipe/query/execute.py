"""Running statements on a connection: sync for the command line, async for the console."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.rows import dict_row

from fleetpipe.query import explain as explaining
from fleetpipe.query.scope import Scope
from fleetpipe.query.statements import Geometry, Statement
from fleetpipe.query.window import Window


@dataclass(frozen=True)
class Result:
    columns: list[str]
    rows: list[dict[str, Any]]
    geometry: Geometry = Geometry.NONE
    extra: dict[str, Any] = field(default_factory=dict)


def fetch(conn: psycopg.Connection[Any], statement: Statement) -> Result:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(statement.sql.encode(), statement.params)
        rows = cur.fetchall()
        columns = [d.name for d in cur.description or []]
    return Result(columns, rows, statement.geometry)


async def afetch(conn: psycopg.AsyncConnection[Any], statement: Statement) -> Result:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(statement.sql.encode(), statement.params)
        rows = await cur.fetchall()
        columns = [d.name for d in cur.description or []]
    return Result(columns, rows, statement.geometry)


def explain(
    conn: psycopg.Connection[Any], alert_id: str, scope: Scope, window: Window | None
) -> dict[str, Any]:
    found = fetch(conn, explaining.alert_statement(alert_id, scope)).rows
    details = {}
    if found:
        for name, statement in explaining.detail_statements(found[0], window).items():
            details[name] = fetch(conn, statement).rows
    return explaining.explanation(found, details)


async def aexplain(
    conn: psycopg.AsyncConnection[Any], alert_id: str, scope: Scope, window: Window | None
) -> dict[str, Any]:
    found = (await afetch(conn, explaining.alert_statement(alert_id, scope))).rows
    details = {}
    if found:
        for name, statement in explaining.detail_statements(found[0], window).items():
            details[name] = (await afetch(conn, statement)).rows
    return explaining.explanation(found, details)
