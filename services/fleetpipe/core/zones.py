"""Zones on the map: polygons with a speed limit, keep-in and keep-out geofences, per fleet.

A FleetPipeline's ``spec.zones`` is a list of these; the operator renders it into what the
services read — the speed zones into enrichment's speed-limit table (``areas``), the geofences
into detection's rules file (``geofence.fences``) — with :func:`speed_areas` and :func:`fences`,
so both services see the same polygons. A zone may be both::

    - name: city              # lower-case letters, digits, '_', '.', '-'; unique
      polygon: [[52.41, 4.83], [52.41, 4.98], [52.33, 4.98], [52.33, 4.83]]   # [lat, lon]
      speed_limit_kmh: 50     # a speed zone (optional)
      geofence: keep_in       # keep_in: alert on leaving; keep_out: alert on entering (optional)
      fleets: [fleet-1]       # the fleets it applies to; [] (the default): every fleet

Where speed zones overlap, the smallest one that contains the position applies (a school zone
inside a city zone), as the longest geohash prefix does among enrichment's cell zones.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator
from shapely.geometry import Polygon

Vertex = tuple[float, float]  # [lat, lon]

NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,62}$"
_NAME = re.compile(NAME_PATTERN)


def zone_name(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"{name!r}: lower-case letters, digits, '_', '.', '-' (max 63)")
    return name


def checked_polygon(polygon: list[Vertex]) -> list[Vertex]:
    """``polygon`` if its vertices are [lat, lon] pairs and it encloses an area."""
    for i, (lat, lon) in enumerate(polygon):
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise ValueError(f"vertex {i} [{lat}, {lon}] is not a [lat, lon] pair")
    if not shape(polygon).is_valid or shape(polygon).area == 0:
        raise ValueError("the polygon is empty or crosses itself")
    return polygon


def shape(polygon: list[Vertex]) -> Polygon:
    """The polygon in shapely's (x, y) = (lon, lat) order."""
    return Polygon([(lon, lat) for lat, lon in polygon])


class Zone(BaseModel):
    """A polygon with a speed limit, a geofence or both, for some fleets or every fleet."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    polygon: list[Vertex] = Field(min_length=3, max_length=1000)
    speed_limit_kmh: float | None = Field(default=None, gt=0, le=400)
    geofence: Literal["keep_in", "keep_out"] | None = None
    fleets: list[str] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        return zone_name(name)

    @field_validator("polygon")
    @classmethod
    def _polygon(cls, polygon: list[Vertex]) -> list[Vertex]:
        return checked_polygon(polygon)

    @model_validator(mode="after")
    def _does_something(self) -> Zone:
        if self.speed_limit_kmh is None and self.geofence is None:
            raise ValueError(f"zone {self.name}: set speed_limit_kmh, geofence or both")
        return self


def unique_names(zones: list[Zone]) -> list[Zone]:
    names = [z.name for z in zones]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"zone names must be unique: {', '.join(dupes)}")
    return zones


ZONES: TypeAdapter[list[Zone]] = TypeAdapter(list[Zone])


def parse_zones(doc: Any) -> list[Zone]:
    """``spec.zones`` (a list of mappings) as zones; ValueError / ValidationError when bad."""
    return unique_names(ZONES.validate_python(doc or []))


def speed_areas(zones: list[Zone]) -> list[dict[str, Any]]:
    """The speed zones, as enrichment's speed-limit table lists them (``areas``)."""
    return [
        z.model_dump(mode="json", exclude={"geofence"}, exclude_none=True)
        for z in zones
        if z.speed_limit_kmh is not None
    ]


def fences(zones: list[Zone]) -> list[dict[str, Any]]:
    """The geofences, as detection's rules file lists them (``geofence.fences``)."""
    return [
        {
            "name": z.name,
            "kind": z.geofence,
            "polygon": [list(v) for v in z.polygon],
            "fleets": list(z.fleets),
        }
        for z in zones
        if z.geofence is not None
    ]
