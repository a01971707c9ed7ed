"""Geofence membership for detection, a batch of positions at a time."""

from __future__ import annotations

from collections.abc import Sequence

import shapely
from shapely.geometry import Polygon

from fleetpipe.detection.config import Fence


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
