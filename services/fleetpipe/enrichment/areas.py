"""Speed zones drawn as polygons: which one applies at a position, cheaply.

Enrichment places a vehicle once per geohash cell (about 1.2 km x 0.6 km) and reuses the
result while the vehicle stays in the cell. For polygons that holds where the answer is the
same everywhere in the cell: per cell (and fleet) :meth:`SpeedAreas.place` works out, once,
whether the cell lies wholly inside or outside the zones that matter there. Only in a cell a
zone's border crosses is the exact position tested, event by event.

Where zones overlap, the smallest zone containing the position applies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import shapely
from shapely.geometry import box

from fleetpipe.core.zones import Zone, shape


@dataclass(frozen=True, slots=True)
class CellAreas:
    """What a cell says for one fleet: a limit for all of it, or zones to test per position."""

    limit: float | None  # the limit of the cell's smallest zone covering all of it, if any
    exact: tuple[int, ...] = ()  # smaller zones crossing the cell: test the position first


class SpeedAreas:
    """The speed zones among ``zones`` (those with a ``speed_limit_kmh``), smallest first."""

    def __init__(self, zones: Sequence[Zone]) -> None:
        speed = [z for z in zones if z.speed_limit_kmh is not None]
        self._shapes = [shape(z.polygon) for z in speed]
        order = sorted(range(len(speed)), key=lambda i: self._shapes[i].area)
        self._zones = [speed[i] for i in order]
        self._shapes = [self._shapes[i] for i in order]
        for s in self._shapes:
            shapely.prepare(s)
        self._cells: dict[tuple[str, str], CellAreas] = {}

    def __bool__(self) -> bool:
        return bool(self._zones)

    def place(self, cell: str, bounds: tuple[float, float, float, float], fleet: str) -> CellAreas:
        """The zones of ``cell`` (bounds: south, north, west, east) for a vehicle of ``fleet``."""
        key = (cell, fleet)
        found = self._cells.get(key)
        if found is None:
            south, north, west, east = bounds
            rect = box(west, south, east, north)
            exact: list[int] = []
            limit = None
            for i, zone in enumerate(self._zones):
                if zone.fleets and fleet not in zone.fleets:
                    continue
                outline = self._shapes[i]
                if outline.contains(rect):
                    limit = zone.speed_limit_kmh
                    break
                if outline.intersects(rect):
                    exact.append(i)
            found = self._cells[key] = CellAreas(limit, tuple(exact))
        return found

    def limit_at(self, areas: CellAreas, lat: float, lon: float) -> float | None:
        """The limit at (lat, lon) in a cell a zone's border crosses."""
        for i in areas.exact:
            if shapely.contains_xy(self._shapes[i], lon, lat):
                return self._zones[i].speed_limit_kmh
        return areas.limit
