"""Speeding: which limit applies to a vehicle where it is, and the tiers above it.

Three limits can speak about one event. Enrichment stamps two of them on it — the posted limit
of the speed zone the vehicle is in (``zone_limit_kmh``, 0 outside every zone) and the
vehicle's own limit from its type or speed profile (``vehicle_limit_kmh``, 0 when neither is
listed) — and the FleetPipeline's ``spec.rules.speeding.threshold_kmh`` is the third. The
limit that applies is, in this order:

1. the zone's posted limit inside a speed zone (``use_zone_limit``), higher or lower than the
   threshold: a 50 zone in town, a 110 zone on a motorway;
2. ``threshold_kmh`` everywhere else — the fleet's own limit;
3. then capped by the vehicle's own limit when it has one (``use_vehicle_limit``): a truck
   limited to 80 stays at 80 in a 110 zone, and is not raised above a 50 zone.

The base tier opens above ``limit + tolerance_kmh`` with the rule's severity (warning). Each of
``tiers`` opens an episode of its own with its own severity, above an absolute speed
(``above_kmh``: the seed's "speed > 120" whatever the road) or above the applicable limit by a
margin (``over_limit_kmh``). A vehicle at 130 where 80 applies thus has a warning episode and a
critical one, each opened, updated and resolved once; the critical one ends when it drops
under 120 while the warning one lasts until it is back under 80. Enrichment's own
``speed_limit_kmh`` (which falls back to its ``default_kmh``) is not used here, so the
threshold set on the FleetPipeline is never overridden by a default.
"""

from __future__ import annotations

import numpy as np

from fleetpipe.detection.config import SpeedingConfig, SpeedTier
from fleetpipe.detection.readings import Columns, Floats, Reading
from fleetpipe.detection.rules import SEVERITY, Rule, where


class Speeding(Rule):
    """The base tier: above the limit that applies (see the module docstring)."""

    name = "speeding"

    def __init__(self, c: SpeedingConfig) -> None:
        super().__init__(c)
        self.threshold = c.threshold_kmh
        self.use_zone = c.use_zone_limit
        self.use_vehicle = c.use_vehicle_limit
        self.tolerance = c.tolerance_kmh
        self.hysteresis = c.hysteresis_kmh

    def limits(self, c: Columns) -> Floats:
        """Per reading, the limit that applies."""
        road = np.full(c.size, self.threshold)
        if self.use_zone:
            road = np.where(c.zone_limit > 0, c.zone_limit, road)
        if self.use_vehicle:
            road = np.where(c.vehicle_limit > 0, np.minimum(road, c.vehicle_limit), road)
        return road

    def limit(self, r: Reading) -> float:
        road = r.zone_limit if self.use_zone and r.zone_limit > 0 else self.threshold
        if self.use_vehicle and r.vehicle_limit > 0:
            road = min(road, r.vehicle_limit)
        return road

    def bounds(self, c: Columns) -> Floats:
        """Per reading, the speed above which this tier's condition holds."""
        return self.limits(c) + self.tolerance

    def check(self, c: Columns, holding: bool) -> Floats:
        bound = self.bounds(c) - (self.hysteresis if holding else 0.0)
        return where(c.speed > bound, c.speed)

    def values(self, r: Reading) -> dict[str, float]:
        return {"speed_kmh": r.speed, "limit_kmh": self.limit(r)}

    def describe(self, values: dict[str, float]) -> str:
        return (
            f"speeding: {values.get('speed_kmh', 0):.0f} km/h where the limit is "
            f"{values.get('limit_kmh', 0):.0f} km/h"
        )


class SpeedingTier(Speeding):
    """A further tier: its own episode (key ``speeding:<severity>``) and severity."""

    def __init__(self, c: SpeedingConfig, tier: SpeedTier) -> None:
        super().__init__(c)
        self.key = f"{self.name}:{tier.severity}"
        self.severity = SEVERITY[tier.severity]
        self.above = tier.above_kmh
        self.over = tier.over_limit_kmh or 0.0

    def bounds(self, c: Columns) -> Floats:
        if self.above is not None:
            return np.full(c.size, self.above)
        return self.limits(c) + self.over

    def values(self, r: Reading) -> dict[str, float]:
        bound = self.above if self.above is not None else self.limit(r) + self.over
        return {"speed_kmh": r.speed, "limit_kmh": self.limit(r), "tier_kmh": bound}

    def describe(self, values: dict[str, float]) -> str:
        return (
            f"speeding: {values.get('speed_kmh', 0):.0f} km/h, over "
            f"{values.get('tier_kmh', 0):.0f} km/h (the limit is "
            f"{values.get('limit_kmh', 0):.0f} km/h)"
        )


def speeding_rules(c: SpeedingConfig) -> list[Speeding]:
    """The base tier and every further tier, in the configured order."""
    return [Speeding(c), *(SpeedingTier(c, tier) for tier in c.tiers)]
