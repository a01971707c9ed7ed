"""The demo's fleet KPIs: the KPI stage's settings for a short run, and its latest windows.

The stage's defaults (15-minute windows every minute) suit a fleet's dashboard, not a demo of
a minute or two: the demo runs it with 60 s windows every 10 s, and a quiet partition lets its
windows close after a few seconds, so that windows of the run are stored before it ends. The
summary reads them back from PostgreSQL through the query layer's ``kpi-windows`` statement.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import SecretStr
from rich.table import Table

from fleetpipe.core.db import PostgresSettings, connect
from fleetpipe.query import execute, statements
from fleetpipe.query.scope import Scope
from fleetpipe.query.window import Window
from fleetpipe_dev.testing import wait_for


@dataclass(frozen=True)
class DemoWindows:
    window_s: int = 60
    hop_s: int = 10
    lateness_s: int = 5
    idle_s: int = 5

    def env(self) -> dict[str, str]:
        """The KPI stage's ``FLEET_*`` settings (fleetpipe.kpis.settings.KpiSettings)."""
        return {
            "FLEET_WINDOW_S": str(self.window_s),
            "FLEET_HOP_S": str(self.hop_s),
            "FLEET_ALLOWED_LATENESS_S": str(self.lateness_s),
            "FLEET_IDLE_S": str(self.idle_s),
        }

    @property
    def wait_s(self) -> float:
        """How long after the load the first windows may take to be stored: a window closes
        a lateness past its end once the input is idle, then the writer stores it."""
        return float(self.window_s + self.lateness_s + self.idle_s + 60)


def latest_windows(
    dsn: str, schema: str, fleet: str, *, timeout_s: float, limit: int = 3
) -> list[dict[str, Any]]:
    """The fleet's newest stored windows (newest first), once there is at least one."""
    settings = PostgresSettings(dsn=SecretStr(dsn), schema_name=schema)
    scope = Scope(frozenset({fleet}))
    with connect(settings, application_name="fleetpipe-demo", autocommit=True) as conn:

        def stored() -> list[dict[str, Any]]:
            statement = statements.kpi_windows(Window(datetime.now(UTC)), scope, limit=limit)
            return execute.fetch(conn, statement).rows

        return wait_for(stored, timeout=timeout_s, interval=1.0, what=f"KPI windows of {fleet}")


def kpi_table(rows: list[dict[str, Any]], windows: DemoWindows) -> Table:
    title = f"FleetPipe demo: fleet KPIs ({windows.window_s} s windows every {windows.hop_s} s)"
    table = Table(title=title, title_justify="left")
    for column in ("window (UTC)", "fleet", "vehicles reporting", "distance", "max speed"):
        table.add_column(column)
    for row in rows:
        start, end = row["window_start"], row["window_end"]
        table.add_row(
            f"{start:%H:%M:%S}–{end:%H:%M:%S}",
            str(row["fleet_id"]),
            f"{row['active_vehicles']:,}",
            f"{float(row['distance_km']):,.2f} km",
            f"{float(row['max_speed_kmh']):.1f} km/h",
        )
    return table
