"""One alert explained: the rule and threshold that fired, the events around it, its episode's
transitions, and every notification with its delivery outcome.

:func:`statements` says what to read; :func:`explanation` assembles what was read (both pure),
so the command line and the console run the same reads on their own connections.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from fleetpipe.query.errors import BadQuery, NotFound
from fleetpipe.query.scope import Scope
from fleetpipe.query.statements import Geometry, Statement
from fleetpipe.query.window import Window

Rows = list[dict[str, Any]]

# The events around an alert, when no window is asked for: from shortly before the episode
# started to shortly after it ended (or was last updated).
AROUND = timedelta(minutes=2)
MAX_EVENTS = 2000

# Keys of an alert's values that are the rule's bounds rather than what was observed.
_BOUND_PREFIXES = ("threshold", "limit", "min_", "max_")


def alert_statement(alert_id: str, scope: Scope) -> Statement:
    if not alert_id:
        raise BadQuery("alert_id", "an alert id is needed")
    return Statement(
        """
SELECT alert_id, vehicle_id, fleet_id, driver_id, rule, severity, state, episode_start,
       episode_end, event_time, ingest_time, detected_time, seq, lat, lon, geohash6, message,
       trigger_values
FROM alerts
WHERE alert_id = %(alert_id)s
  AND (%(fleets)s::text[] IS NULL OR fleet_id = ANY(%(fleets)s::text[]))""",
        {"alert_id": alert_id, "fleets": scope.param()},
    )


def detail_statements(alert: Mapping[str, Any], window: Window | None) -> dict[str, Statement]:
    """The reads that follow once the alert is known (and known to be in scope)."""
    start = alert["episode_start"] - AROUND
    end = (alert["episode_end"] or alert["detected_time"]) + AROUND
    if window is not None:
        start, end = window.since or start, window.until
    return {
        "transitions": Statement(
            """
SELECT state, severity, detected_time, event_time, seq, message, trigger_values
FROM alert_transitions WHERE alert_id = %(alert_id)s
ORDER BY state_rank, detected_time""",
            {"alert_id": alert["alert_id"]},
        ),
        "events": Statement(
            """
SELECT seq, event_time, lat, lon, speed_kmh, accel_x_ms2, accel_y_ms2, fuel_pct,
       coolant_temp_c, rpm, gear, battery_pct, ignition, sos, crash
FROM telemetry
WHERE vehicle_id = %(vehicle)s
  AND event_day BETWEEN (%(start)s::timestamptz AT TIME ZONE 'UTC')::date
                    AND (%(end)s::timestamptz AT TIME ZONE 'UTC')::date
  AND event_time BETWEEN %(start)s AND %(end)s
ORDER BY event_time, seq
LIMIT %(limit)s""",
            {"vehicle": alert["vehicle_id"], "start": start, "end": end, "limit": MAX_EVENTS},
            Geometry.LINE,
        ),
        "notifications": Statement(
            """
SELECT phase, recipient, channel, status, to_address, provider_sid, attempts, error_code,
       error_message, created_at, decided_at
FROM notification_ledger WHERE alert_id = %(alert_id)s
ORDER BY created_at, phase, recipient, channel""",
            {"alert_id": alert["alert_id"]},
        ),
    }


def split_values(values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the rule's bounds, what was observed) among an alert's trigger values."""
    bounds = {k: v for k, v in values.items() if k.startswith(_BOUND_PREFIXES)}
    observed = {k: v for k, v in values.items() if k not in bounds}
    return bounds, observed


def explanation(alert_rows: Rows, details: Mapping[str, Rows]) -> dict[str, Any]:
    """The explanation of the one alert in ``alert_rows``; :class:`NotFound` if there is none."""
    if not alert_rows:
        raise NotFound("no such alert in the fleets this caller may see")
    alert = dict(alert_rows[0])
    values = alert.pop("trigger_values") or {}
    bounds, observed = split_values(values)
    return {
        "alert": alert,
        "rule": alert["rule"],
        "threshold": bounds,
        "observed": observed,
        "transitions": details.get("transitions", []),
        "events": details.get("events", []),
        "notifications": details.get("notifications", []),
    }
