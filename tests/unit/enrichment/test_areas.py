"""Speed zones drawn as polygons: the smallest containing zone applies, exactly at its border."""

from __future__ import annotations

import random

import pytest
import shapely

from fleetpipe.core.zones import Zone, shape
from fleetpipe.enrichment.enrich import Enricher, SpeedLimits
from fleetpipe.pb.v1 import enriched_pb2, telemetry_pb2
from fleetpipe.registry import Vehicle, VehicleRegistry

pytestmark = pytest.mark.unit

CITY = Zone(
    name="city",
    polygon=[(52.30, 4.80), (52.30, 5.00), (52.42, 5.00), (52.42, 4.80)],
    speed_limit_kmh=50,
)
# A small triangle inside the city, its sides crossing geohash cells.
SCHOOL = Zone(
    name="school", polygon=[(52.360, 4.880), (52.372, 4.884), (52.364, 4.897)], speed_limit_kmh=30
)
DEPOT = Zone(
    name="depot-b",
    polygon=[(52.35, 4.85), (52.35, 4.87), (52.36, 4.87), (52.36, 4.85)],
    speed_limit_kmh=15,
    fleets=["fleet-b"],
)
REGISTRY = VehicleRegistry(
    [Vehicle("a-1", "fleet-a", "car", "M", "d"), Vehicle("b-1", "fleet-b", "car", "M", "d")]
)


def _zone_limits(
    enricher: Enricher, vehicle: str, points: list[tuple[float, float]]
) -> list[float]:
    registered = REGISTRY.get(vehicle)
    # Ingest stamps every event with its token's fleet, which must own the vehicle.
    fleet = registered.fleet_id if registered is not None else ""
    events = [
        telemetry_pb2.Telemetry(
            vehicle_id=vehicle,
            fleet_id=fleet,
            seq=i + 1,
            location=telemetry_pb2.Location(lat=lat, lon=lon),
        )
        for i, (lat, lon) in enumerate(points)
    ]
    batch = enricher.enrich(((t, t.SerializeToString()) for t in events), now_us=1)
    return [enriched_pb2.EnrichedTelemetry.FromString(v).zone_limit_kmh for _, v in batch.values]


def _enricher(*zones: Zone, **limits: object) -> Enricher:
    return Enricher(REGISTRY, SpeedLimits.model_validate({"areas": list(zones), **limits}))


@pytest.mark.parametrize(
    ("vehicle", "point", "limit"),
    [
        pytest.param("a-1", (52.40, 4.95), 50, id="in-the-city"),
        pytest.param("a-1", (52.365, 4.887), 30, id="the-smaller-zone-inside-wins"),
        pytest.param("a-1", (52.50, 4.95), 0, id="outside-every-zone"),
        pytest.param("a-1", (52.355, 4.86), 50, id="another-fleets-zone-does-not-apply"),
        pytest.param("b-1", (52.355, 4.86), 15, id="its-own-fleets-zone-does"),
    ],
)
def test_the_zone_that_applies(vehicle: str, point: tuple[float, float], limit: float) -> None:
    assert _zone_limits(_enricher(CITY, SCHOOL, DEPOT), vehicle, [point]) == [limit]


def test_a_polygon_zone_comes_before_a_geohash_zone() -> None:
    enricher = _enricher(CITY, zones={"u17": 100})
    assert _zone_limits(enricher, "a-1", [(52.40, 4.95), (52.50, 4.95)]) == [50, 100]


def test_a_walk_across_borders_matches_point_in_polygon_exactly() -> None:
    # Positions a few metres apart, in and out of the school zone within the same cells: a
    # limit cached per cell would be wrong on one side of each border.
    rng = random.Random(11)
    lat, lon = 52.366, 4.888
    points = []
    for _ in range(4000):
        lat = min(max(lat + rng.uniform(-0.0004, 0.0004), 52.355), 52.377)
        lon = min(max(lon + rng.uniform(-0.0004, 0.0004), 4.875), 4.902)
        points.append((lat, lon))
    got = _zone_limits(_enricher(CITY, SCHOOL), "a-1", points)
    school = shape(SCHOOL.polygon)
    expected = [30.0 if shapely.contains_xy(school, lo, la) else 50.0 for la, lo in points]
    assert got == expected
    assert 500 < expected.count(30.0) < 3500, "the walk crosses the border often"


def test_reloaded_limits_place_vehicles_again() -> None:
    enricher = _enricher(CITY)
    assert _zone_limits(enricher, "a-1", [(52.40, 4.95)]) == [50]
    enricher.use_limits(
        SpeedLimits.model_validate({"areas": [CITY.model_copy(update={"speed_limit_kmh": 40})]})
    )
    assert _zone_limits(enricher, "a-1", [(52.40, 4.951)]) == [40]


@pytest.mark.parametrize(
    ("areas", "problem"),
    [
        pytest.param(
            [{"name": "x", "polygon": CITY.polygon, "geofence": "keep_in"}],
            "needs speed_limit_kmh",
            id="no-limit",
        ),
        pytest.param([CITY.model_dump(), CITY.model_dump()], "unique", id="same-name"),
        pytest.param(
            [{"name": "x", "polygon": [(0, 0), (1, 1), (0, 1), (1, 0)], "speed_limit_kmh": 5}],
            "crosses itself",
            id="bow-tie",
        ),
    ],
)
def test_bad_speed_zones_are_refused(areas: list[object], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        SpeedLimits.model_validate({"areas": areas})
