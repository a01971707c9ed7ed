"""Which fleets a caller may see, and the filters every query shares."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from fleetpipe.query.errors import BadQuery, Forbidden


@dataclass(frozen=True, slots=True)
class Scope:
    """The fleets a query may read: ``None`` is every fleet (an operator, the command line)."""

    fleets: frozenset[str] | None = None

    @property
    def unrestricted(self) -> bool:
        return self.fleets is None

    def narrow(self, asked: Iterable[str] | None) -> Scope:
        """The scope of a request for ``asked`` fleets: a fleet outside this scope is refused
        (a token of fleet A asking for fleet B gets nothing of B, and is told so)."""
        wanted = frozenset(f for f in (asked or ()) if f)
        if not wanted:
            return self
        if self.fleets is not None and not wanted <= self.fleets:
            outside = ", ".join(sorted(wanted - self.fleets))
            raise Forbidden(f"fleet {outside} is outside this token's fleets")
        return Scope(wanted)

    def param(self) -> list[str] | None:
        """The ``%(fleets)s`` parameter: NULL for every fleet, else the array of fleets."""
        return None if self.fleets is None else sorted(self.fleets)


@dataclass(frozen=True, slots=True)
class BBox:
    """A bounding box in degrees: west, south, east, north (GeoJSON's order)."""

    west: float
    south: float
    east: float
    north: float

    @classmethod
    def parse(cls, text: str) -> BBox:
        parts = text.split(",")
        if len(parts) != 4:
            raise BadQuery("bbox", f"expected west,south,east,north; got {text!r}")
        try:
            west, south, east, north = (float(p) for p in parts)
        except ValueError as exc:
            raise BadQuery("bbox", f"not four numbers: {text!r}") from exc
        if not (-180 <= west <= 180 and -180 <= east <= 180):
            raise BadQuery("bbox", "longitudes must lie in [-180, 180]")
        if not (-90 <= south <= north <= 90):
            raise BadQuery("bbox", "latitudes must lie in [-90, 90] with south <= north")
        if west > east:
            raise BadQuery("bbox", "west must not exceed east (a box across 180° is two boxes)")
        return cls(west, south, east, north)
