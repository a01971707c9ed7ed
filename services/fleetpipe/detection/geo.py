"""Geometry for detection: distances along a trace and geofence membership, batch at a time."""

from __future__ import annotations

import math
from collections.abc import Sequence

import shapely
from shapely.geometry import Polygon

from fleetpipe.detection.config import Fence

EARTH_RADIUS_KM = 6371.0088  # mean Earth radius (IUGG)


_HALF_RADIAN = math.pi / 360.0
_RADIAN = math.pi / 180.0
_sin = math.sin
_cos = math.cos


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance between two WGS84 points (called per event: kept lean)."""
    s1 = _sin((lat2 - lat1) * _HALF_RADIAN)
    s2 = _sin((lon2 - lon1) * _HALF_RADIAN)
    a = s1 * s1 + _cos(lat1 * _RADIAN) * _cos(lat2 * _RADIAN) * s2 * s2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(a) if a < 1.0 else 1.0)


class FenceIndex:
    """Point-in-polygon for every configured fence, vectorised over a batch of positions."""

    def __init__(self, fences: Sequence[Fence]) -> None:
        self.names = [f.name for f in fences]
        self._shapes = []
        for fence in fences:
            shape = Polygon([(lon, lat) for lat, lon in fence.polygon])
            shapely.prepare(shape)
            self._shapes.append(shape)

    def __bool__(self) -> bool:
        return bool(self._shapes)

    def inside(self, lats: Sequence[float], lons: Sequence[float]) -> list[tuple[bool, ...]]:
        """Per position, one flag per fence (in configuration order)."""
        if not self._shapes or not lats:
            return [()] * len(lats)
        xs, ys = list(lons), list(lats)
        columns = [shapely.contains_xy(shape, xs, ys).tolist() for shape in self._shapes]
        return list(zip(*columns, strict=True))
