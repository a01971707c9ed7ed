"""The simulated fleet's city as zones: what a pipeline sets so every injected scenario can alert.

The simulator drives inside an operating area (:meth:`Fleet.geofence`, a 16-gon of 15 km) and
its ``geofence_exit`` scenario leaves it; normal driving stays within 9 km of the centre at no
more than 56 km/h. So the city is:

- ``operating-area``: the simulator's own polygon, a keep-in geofence (``geofence_exit``);
- ``city``: a 60 km/h speed zone of 9.5 km around the centre, where normal driving never
  speeds and the ``speeding`` scenario (95–110 km/h) always does.

The samples (``k8s/samples``, the chart's values) carry the same zones for the default centre
(a unit test compares them); the demo builds them for its fleet.
"""

from __future__ import annotations

from fleetpipe.core.zones import Zone
from fleetpipe_loadtest.fleet import DEFAULT_CENTER, GEOFENCE_RADIUS_M, GEOFENCE_SIDES
from fleetpipe_loadtest.geo import regular_polygon

CITY_RADIUS_M = 9_500.0
CITY_SIDES = 24
CITY_LIMIT_KMH = 60.0


def _ring(center: tuple[float, float], radius_m: float, sides: int) -> list[tuple[float, float]]:
    # regular_polygon gives a closed (lon, lat) ring; zones take [lat, lon] vertices, open.
    ring = regular_polygon(*center, radius_m, sides)[:-1]
    return [(round(lat, 5), round(lon, 5)) for lon, lat in ring]


def city_zones(center: tuple[float, float] = DEFAULT_CENTER) -> list[Zone]:
    return [
        Zone(
            name="operating-area",
            polygon=_ring(center, GEOFENCE_RADIUS_M, GEOFENCE_SIDES),
            geofence="keep_in",
        ),
        Zone(
            name="city",
            polygon=_ring(center, CITY_RADIUS_M, CITY_SIDES),
            speed_limit_kmh=CITY_LIMIT_KMH,
        ),
    ]
