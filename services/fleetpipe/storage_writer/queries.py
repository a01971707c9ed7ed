"""The seeds' analytics over the hot store, by name: what ``fleetpipe query`` runs.

Each query reads one of the views of migration 0002, so dashboards (Metabase, Grafana) and the
command line show the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg


@dataclass(frozen=True)
class Query:
    name: str
    help: str
    sql: str
    needs_vehicle: bool = False


QUERIES = {
    q.name: q
    for q in (
        Query(
            "trace",
            "a vehicle's trace over the last hour",
            "SELECT event_time, seq, lat, lon, speed_kmh, heading_deg, geohash6, ignition "
            "FROM vehicle_trace_last_hour WHERE vehicle_id = %(vehicle)s "
            "ORDER BY event_time DESC LIMIT %(limit)s",
            needs_vehicle=True,
        ),
        Query(
            "alerts-per-hour",
            "alert episodes opened per hour, by rule",
            "SELECT hour, rule, severity, alerts, vehicles FROM alerts_hourly "
            "WHERE hour > now() - make_interval(hours => %(hours)s) "
            "ORDER BY hour DESC, alerts DESC LIMIT %(limit)s",
        ),
        Query(
            "scorecards",
            "drivers' latest scores, worst first, with the week's totals",
            "SELECT * FROM driver_scorecards ORDER BY score, driver_id LIMIT %(limit)s",
        ),
        Query(
            "trips",
            "trips per vehicle: count, distance, driving and idle hours",
            "SELECT * FROM trips_per_vehicle ORDER BY trips DESC, distance_km DESC, vehicle_id "
            "LIMIT %(limit)s",
        ),
        Query(
            "utilisation",
            "fleet utilisation now: active, idle, parked, offline vehicles",
            "SELECT * FROM fleet_utilisation ORDER BY fleet_id LIMIT %(limit)s",
        ),
        Query(
            "self-driving",
            "interventions, disengagements and km per intervention (24 h)",
            "SELECT * FROM self_driving_metrics "
            "ORDER BY interventions DESC, distance_km DESC, vehicle_id LIMIT %(limit)s",
        ),
    )
}


def run(
    conn: psycopg.Connection[Any],
    name: str,
    *,
    vehicle: str = "",
    hours: int = 24,
    limit: int = 50,
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """(column names, rows) of the named query."""
    query = QUERIES[name]
    with conn.cursor() as cur:
        cur.execute(query.sql.encode(), {"vehicle": vehicle, "hours": hours, "limit": limit})
        columns = [d.name for d in cur.description or []]
        return columns, cur.fetchall()
