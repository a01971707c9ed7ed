"""The window and scope every query shares: what is honoured and what is refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fleetpipe.query.errors import BadQuery, Forbidden
from fleetpipe.query.formats import plain, to_geojson
from fleetpipe.query.scope import BBox, Scope
from fleetpipe.query.statements import Geometry
from fleetpipe.query.window import Window, resolve

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("kwargs", "window"),
    [
        pytest.param({}, Window(NOW, NOW - timedelta(hours=24)), id="default"),
        pytest.param({"hours": 2}, Window(NOW, NOW - timedelta(hours=2)), id="hours"),
        pytest.param({"default_hours": None}, Window(NOW, None), id="unbounded"),
        pytest.param(
            {"since": datetime(2026, 6, 1, 10, 0)},
            Window(NOW, datetime(2026, 6, 1, 10, 0, tzinfo=UTC)),
            id="naive-since-is-utc",
        ),
        pytest.param(
            {"until": datetime(2026, 6, 1, 6, 0, tzinfo=UTC), "hours": 1},
            Window(datetime(2026, 6, 1, 6, 0, tzinfo=UTC), datetime(2026, 6, 1, 5, 0, tzinfo=UTC)),
            id="hours-back-from-until",
        ),
    ],
)
def test_windows(kwargs: dict[str, object], window: Window) -> None:
    assert resolve(now=NOW, **kwargs) == window  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        pytest.param({"hours": 0}, "hours", id="zero-hours"),
        pytest.param({"hours": 1, "since": NOW}, "hours", id="hours-and-since"),
        pytest.param({"since": NOW + timedelta(seconds=1)}, "since", id="since-after-until"),
    ],
)
def test_refused_windows_name_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(BadQuery) as caught:
        resolve(now=NOW, **kwargs)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_a_scope_refuses_fleets_outside_it() -> None:
    assert Scope().narrow(["a"]).fleets == frozenset({"a"})
    assert Scope(frozenset({"a", "b"})).narrow(None).fleets == frozenset({"a", "b"})
    assert Scope(frozenset({"a", "b"})).narrow(["b"]).param() == ["b"]
    with pytest.raises(Forbidden):
        Scope(frozenset({"a"})).narrow(["b"])


@pytest.mark.parametrize("text", ["1,2,3", "a,b,c,d", "0,50,1,40", "10,0,5,1", "0,-91,1,0"])
def test_bad_boxes(text: str) -> None:
    with pytest.raises(BadQuery) as caught:
        BBox.parse(text)
    assert caught.value.field == "bbox"


def test_geojson_of_a_trace_and_plain_values() -> None:
    rows = [{"lat": 1.0, "lon": 2.0, "seq": 1}, {"lat": 1.5, "lon": 2.5, "seq": 2}]
    line, *points = to_geojson(rows, Geometry.LINE)["features"]
    assert line["geometry"]["coordinates"] == [[2.0, 1.0], [2.5, 1.5]]
    assert [p["properties"]["seq"] for p in points] == [1, 2]
    assert plain({"t": NOW, "x": float("nan")}) == {"t": NOW.isoformat(), "x": None}
