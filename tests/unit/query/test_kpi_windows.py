"""The ``kpi-windows`` statement: fleet-scoped, time-windowed, one dimension or all."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fleetpipe.query.errors import BadQuery
from fleetpipe.query.scope import Scope
from fleetpipe.query.statements import kpi_windows
from fleetpipe.query.window import Window

pytestmark = pytest.mark.unit

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
HOUR = Window(NOW, NOW - timedelta(hours=1))


def test_the_fleet_windows_of_the_callers_fleets_in_the_window() -> None:
    statement = kpi_windows(HOUR, Scope(frozenset({"fleet-b", "fleet-a"})), limit=10)
    assert statement.params == {
        "since": NOW - timedelta(hours=1),
        "until": NOW,
        "fleets": ["fleet-a", "fleet-b"],
        "limit": 10,
        "dimension": "fleet",
    }
    assert "FROM kpi_windows k" in statement.sql
    assert "k.fleet_id = ANY(%(fleets)s::text[])" in statement.sql
    assert "k.window_end <= %(until)s::timestamptz" in statement.sql


def test_every_dimension_when_none_is_named() -> None:
    assert kpi_windows(HOUR, Scope(), dimension=None).params["dimension"] is None
    assert kpi_windows(HOUR, Scope(), dimension="model").params["dimension"] == "model"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        pytest.param({"dimension": "colour"}, "dimension", id="unknown-dimension"),
        pytest.param({"limit": 0}, "limit", id="no-rows"),
    ],
)
def test_bad_parameters_are_refused_naming_them(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(BadQuery) as raised:
        kpi_windows(HOUR, Scope(), **kwargs)  # type: ignore[arg-type]
    assert raised.value.field == field
