"""The time window every query reads: ``--hours`` or ``--since``/``--until``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fleetpipe.query.errors import BadQuery


@dataclass(frozen=True, slots=True)
class Window:
    """``since`` (exclusive of nothing: rows at or after it) up to ``until`` (at or before).

    ``since`` is None when the query looks back without bound (open alerts, latest positions).
    """

    until: datetime
    since: datetime | None = None


def _aware(value: datetime) -> datetime:
    # A time without a zone is read as UTC: the store keeps timestamptz, and a person typing
    # --since 2026-01-01T10:00 on a server means the server's clock, which runs in UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def resolve(
    *,
    hours: float | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    default_hours: float | None = 24.0,
    now: datetime | None = None,
) -> Window:
    """The window asked for; ``default_hours`` back from ``until`` when neither bound is given.

    Raises :class:`BadQuery` (naming the field) for ``hours`` together with ``since``, a
    non-positive ``hours`` or a ``since`` after ``until``.
    """
    if hours is not None and since is not None:
        raise BadQuery("hours", "give either hours or since, not both")
    if hours is not None and hours <= 0:
        raise BadQuery("hours", f"must be positive, got {hours}")
    end = _aware(until) if until is not None else (now or datetime.now(UTC))
    start: datetime | None
    if since is not None:
        start = _aware(since)
    elif hours is not None:
        start = end - timedelta(hours=hours)
    elif default_hours is not None:
        start = end - timedelta(hours=default_hours)
    else:
        start = None
    if start is not None and start > end:
        raise BadQuery("since", f"{start.isoformat()} is after until {end.isoformat()}")
    return Window(until=end, since=start)
