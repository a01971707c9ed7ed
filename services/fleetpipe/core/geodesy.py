"""Distance on the Earth between WGS84 positions."""

from __future__ import annotations

import math

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
