"""The KPI windows computed independently: DuckDB SQL over the recorded events, joined to the
vehicles table for model and type.

Nothing here shares code with the KPI stage: a window is every hop-aligned ``[start, start +
size)`` that holds an event, the figures are SQL aggregates over the events in it, and a
vehicle's distance is its largest odometer reading in the window minus its smallest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from fleetpipe.pb.v1 import alert_pb2, telemetry_pb2

Key = tuple[int, str, str, str]  # (window start µs, fleet, dimension, value)


@dataclass(frozen=True)
class Figures:
    active_vehicles: int
    distance_km: float
    max_speed_kmh: float
    avg_speed_kmh: float
    speed_samples: int


_WINDOWED = """
CREATE TEMP TABLE windowed AS
SELECT (e.t // $hop) * $hop - j.range * $hop AS window_start,
       e.vehicle_id, e.fleet_id, v.model, v.vehicle_type, e.speed_kmh, e.odometer_km
FROM events e
JOIN vehicles v USING (vehicle_id)
CROSS JOIN range(0, $panes) j
"""

_BY_VEHICLE = """
CREATE TEMP TABLE by_vehicle AS
SELECT window_start, vehicle_id, fleet_id, model, vehicle_type,
       count(*) AS samples, sum(speed_kmh) AS speed_sum, max(speed_kmh) AS speed_max,
       coalesce(max(odometer_km) FILTER (WHERE odometer_km > 0)
                - min(odometer_km) FILTER (WHERE odometer_km > 0), 0) AS distance
FROM windowed
GROUP BY ALL
"""

_GROUPS = """
WITH grouped AS (
    SELECT window_start, fleet_id, 'fleet' AS dimension, fleet_id AS value, * EXCLUDE
        (window_start, fleet_id) FROM by_vehicle
    UNION ALL
    SELECT window_start, fleet_id, 'model', model, * EXCLUDE (window_start, fleet_id)
        FROM by_vehicle WHERE model <> ''
    UNION ALL
    SELECT window_start, fleet_id, 'vehicle_type', vehicle_type,
        * EXCLUDE (window_start, fleet_id) FROM by_vehicle WHERE vehicle_type <> ''
)
SELECT window_start, fleet_id, dimension, value,
       count(DISTINCT vehicle_id), sum(distance), max(speed_max),
       sum(speed_sum) / sum(samples), sum(samples)
FROM grouped
GROUP BY window_start, fleet_id, dimension, value
"""

_ALERTS = """
WITH windowed AS (
    SELECT (a.t // $hop) * $hop - j.range * $hop AS window_start,
           a.fleet_id, a.rule, v.model, v.vehicle_type
    FROM alerts a
    JOIN vehicles v USING (vehicle_id)
    CROSS JOIN range(0, $panes) j
    WHERE a.state = 'open'
),
grouped AS (
    SELECT window_start, fleet_id, 'fleet' AS dimension, fleet_id AS value, rule FROM windowed
    UNION ALL
    SELECT window_start, fleet_id, 'model', model, rule FROM windowed WHERE model <> ''
    UNION ALL
    SELECT window_start, fleet_id, 'vehicle_type', vehicle_type, rule FROM windowed
        WHERE vehicle_type <> ''
)
SELECT window_start, fleet_id, dimension, value, rule, count(*) FROM grouped GROUP BY ALL
"""


def reference_windows(
    events: Sequence[telemetry_pb2.Telemetry],
    alerts: Sequence[alert_pb2.Alert],
    vehicles: Sequence[tuple[str, str, str]],
    *,
    size_us: int,
    hop_us: int,
) -> tuple[dict[Key, Figures], dict[tuple[int, str, str, str, str], int]]:
    """Per (window start, fleet, dimension, value) the figures, and per (…, rule) the alert
    episodes opened, of ``events`` and ``alerts``; ``vehicles`` are (id, model, type) rows."""
    con = duckdb.connect()
    try:
        con.register(
            "events",
            pa.table(
                {
                    "vehicle_id": [e.vehicle_id for e in events],
                    "fleet_id": [e.fleet_id for e in events],
                    "t": pa.array([e.event_time_us for e in events], pa.int64()),
                    "speed_kmh": [float(e.motion.speed_kmh) for e in events],
                    "odometer_km": [e.odometer_km for e in events],
                }
            ),
        )
        con.register(
            "alerts",
            pa.table(
                {
                    "vehicle_id": [a.vehicle_id for a in alerts],
                    "fleet_id": [a.fleet_id for a in alerts],
                    "rule": [a.rule for a in alerts],
                    "state": [
                        "open" if a.state == alert_pb2.ALERT_STATE_OPEN else "other" for a in alerts
                    ],
                    "t": pa.array([a.event_time_us for a in alerts], pa.int64()),
                }
            ),
        )
        con.register(
            "vehicles",
            pa.table(
                {
                    "vehicle_id": [v[0] for v in vehicles],
                    "model": [v[1] for v in vehicles],
                    "vehicle_type": [v[2] for v in vehicles],
                }
            ),
        )
        params = {"hop": hop_us, "panes": size_us // hop_us}
        con.execute(_WINDOWED, params)
        con.execute(_BY_VEHICLE)
        figures = {
            (int(start), fleet, dimension, value): Figures(
                int(active), float(distance), float(top), float(avg), int(samples)
            )
            for start, fleet, dimension, value, active, distance, top, avg, samples in con.execute(
                _GROUPS
            ).fetchall()
        }
        counted = {
            (int(start), fleet, dimension, value, rule): int(n)
            for start, fleet, dimension, value, rule, n in con.execute(_ALERTS, params).fetchall()
        }
        return figures, counted
    finally:
        con.close()
