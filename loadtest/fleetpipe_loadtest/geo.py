"""Spherical geometry on WGS84 degrees: distances, bearings and destinations (scalar, exact)."""

from __future__ import annotations

import math

from fleetpipe.core.geodesy import EARTH_RADIUS_KM, haversine_km

EARTH_RADIUS_M = EARTH_RADIUS_KM * 1000.0


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """:func:`~fleetpipe.core.geodesy.haversine_km` in metres, the simulator's unit."""
    return haversine_km(lat1, lon1, lat2, lon2) * 1000.0


def bearing_deg(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Initial bearing from point 1 to point 2, clockwise from north, 0..360."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dl = math.radians(lon2 - lon1)
    y = math.sin(dl) * math.cos(p2)
    x = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    return math.degrees(math.atan2(y, x)) % 360.0


def destination(lat: float, lon: float, bearing: float, distance_m: float) -> tuple[float, float]:
    """The point ``distance_m`` from (lat, lon) along ``bearing`` degrees."""
    d = distance_m / EARTH_RADIUS_M
    b = math.radians(bearing)
    p1, l1 = math.radians(lat), math.radians(lon)
    p2 = math.asin(math.sin(p1) * math.cos(d) + math.cos(p1) * math.sin(d) * math.cos(b))
    l2 = l1 + math.atan2(
        math.sin(b) * math.sin(d) * math.cos(p1), math.cos(d) - math.sin(p1) * math.sin(p2)
    )
    return math.degrees(p2), (math.degrees(l2) + 540.0) % 360.0 - 180.0


def regular_polygon(
    lat: float, lon: float, radius_m: float, sides: int
) -> list[tuple[float, float]]:
    """A closed ring of (lon, lat) vertices around a centre, GeoJSON order."""
    ring = [destination(lat, lon, 360.0 * k / sides, radius_m) for k in range(sides)]
    pts = [(p[1], p[0]) for p in ring]
    return [*pts, pts[0]]
