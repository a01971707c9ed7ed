"""Telemetry joined with the vehicle registry and the map: pure logic, no I/O.

Speed limits come from a small table (YAML, mounted from a ConfigMap; built-in defaults when
absent)::

    default_kmh: 80              # the seeds' limit, for every vehicle
    vehicle_types: {truck: 80}   # cap per vehicle type
    speed_profiles: {highway: 110}
    zones:                       # per geohash prefix (any length 1..6); the longest match wins
      u173z: 50                  # e.g. a city centre
      u173zm: 30                 # a school zone inside it

A vehicle's own limit is the lowest of its type's and its profile's entries (``default_kmh``
when neither is listed); in a zone the applicable limit is the lower of that and the zone's.
Unknown vehicles get ``default_kmh`` and the zone's limit.

The hot path never re-serializes the telemetry. An ``EnrichedTelemetry`` is the raw
``Telemetry`` bytes as field 1 followed by the other fields, and protobuf parses concatenated
fields as one message, so each output is ``tag + length + raw bytes + cached pieces``: the
per-vehicle part (vehicle info, ``known``), the per-cell part (geohash, limit), the expected
gear and the batch's enrichment time. The geohash is recomputed only when a vehicle leaves its
last cell (cells are about 1.2 km x 0.6 km).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import geohash
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from fleetpipe.core.errors import ConfigError
from fleetpipe.core.gearbox import expected_gear
from fleetpipe.core.protowire import tag, varint
from fleetpipe.pb.v1 import enriched_pb2, telemetry_pb2
from fleetpipe.registry import Vehicle, VehicleRegistry

GEOHASH_PRECISION = 6
_GEOHASH_ALPHABET = frozenset("0123456789bcdefghjkmnpqrstuvwxyz")

_MAX_TABULATED_KMH = 400
_BELOW_POLE = math.nextafter(90.0, 0.0)


class SpeedLimits(BaseModel):
    """The speed-limit table (see the module docstring)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    default_kmh: float = Field(default=80.0, gt=0, le=400)
    vehicle_types: dict[str, float] = Field(default_factory=dict)
    speed_profiles: dict[str, float] = Field(default_factory=dict)
    zones: dict[str, float] = Field(default_factory=dict)

    @field_validator("vehicle_types", "speed_profiles", "zones")
    @classmethod
    def _positive(cls, table: dict[str, float]) -> dict[str, float]:
        for name, limit in table.items():
            if not 0 < limit <= 400:
                raise ValueError(f"{name}: {limit} km/h is not a speed limit (0 < limit <= 400)")
        return table

    @field_validator("zones")
    @classmethod
    def _geohash_prefixes(cls, zones: dict[str, float]) -> dict[str, float]:
        for prefix in zones:
            if not 1 <= len(prefix) <= GEOHASH_PRECISION or set(prefix) - _GEOHASH_ALPHABET:
                raise ValueError(
                    f"{prefix!r} is not a geohash prefix of 1 to {GEOHASH_PRECISION} characters"
                )
        return zones

    @classmethod
    def load(cls, path: Path) -> SpeedLimits:
        try:
            doc = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read speed limits {path}: {exc}") from exc
        try:
            return cls.model_validate(doc)
        except ValidationError as exc:
            raise ConfigError(f"{path}: {_describe(exc)}") from exc

    def vehicle_limit(self, vehicle: Vehicle | None) -> float:
        if vehicle is None:
            return self.default_kmh
        found = [
            limit
            for limit in (
                self.vehicle_types.get(vehicle.vehicle_type),
                self.speed_profiles.get(vehicle.speed_profile),
            )
            if limit is not None
        ]
        return min(found) if found else self.default_kmh

    def zone_limit(self, cell: str) -> float | None:
        for length in range(len(cell), 0, -1):
            limit = self.zones.get(cell[:length])
            if limit is not None:
                return limit
        return None


def _describe(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}"
        for err in exc.errors()
    )


class InvalidTelemetry(ValueError):
    """An event enrichment cannot place; the message names the field."""


_TELEMETRY_TAG = tag(enriched_pb2.EnrichedTelemetry, "telemetry")


def _piece(**fields: object) -> bytes:
    return enriched_pb2.EnrichedTelemetry(**fields).SerializeToString()  # type: ignore[arg-type]


@dataclass(slots=True)
class _VehicleEntry:
    """What enrichment caches per vehicle: its fixed bytes and its last geohash cell."""

    static: bytes  # vehicle info and known flag
    known: bool
    limit_kmh: float
    electric: bool
    fleet: str = ""  # the registered fleet; empty for a vehicle the registry does not know
    cell: str = ""
    cell_bytes: bytes = b""  # geohash and applicable limit
    south: float = 1.0  # an empty box until the first fix
    north: float = 0.0
    west: float = 1.0
    east: float = 0.0


@dataclass(frozen=True, slots=True)
class EnrichedBatch:
    values: list[tuple[str, bytes]]  # (key, serialized EnrichedTelemetry), input order
    unknown: int  # events from vehicles not in the registry
    invalid: list[tuple[int, str]]  # (index in the batch, reason): not enriched


class Enricher:
    """Enriches batches of telemetry. Holds caches only; every input is passed in."""

    def __init__(self, registry: VehicleRegistry, limits: SpeedLimits) -> None:
        self.limits = limits
        self.registry = registry
        self._vehicles: dict[str, _VehicleEntry] = {}
        self._headers: dict[int, bytes] = {}
        self._gear = [_piece(expected_gear=expected_gear(float(s))) for s in range(401)]

    def use_registry(self, registry: VehicleRegistry) -> None:
        """Switch to a reloaded registry; cached vehicle entries are rebuilt on next sight."""
        self.registry = registry
        self._vehicles.clear()

    def _entry(self, t: telemetry_pb2.Telemetry) -> _VehicleEntry:
        vehicle = self.registry.get(t.vehicle_id)
        if vehicle is None:
            # The fleet the device reported for still helps downstream (alert routing, queries).
            static = _piece(vehicle=enriched_pb2.VehicleInfo(fleet_id=t.fleet_id), known=False)
            electric = False
        else:
            info = enriched_pb2.VehicleInfo(
                fleet_id=vehicle.fleet_id,
                vehicle_type=vehicle.vehicle_type,
                model=vehicle.model,
                driver_id=vehicle.driver_id,
                driver_name=vehicle.driver_name,
                speed_profile=vehicle.speed_profile,
                electric=vehicle.electric,
            )
            static = _piece(vehicle=info, known=True)
            electric = vehicle.electric
        entry = _VehicleEntry(
            static,
            vehicle is not None,
            self.limits.vehicle_limit(vehicle),
            electric,
            vehicle.fleet_id if vehicle is not None else "",
        )
        self._vehicles[t.vehicle_id] = entry
        return entry

    def _move(self, entry: _VehicleEntry, lat: float, lon: float) -> None:
        if not (-90.0 <= lat <= 90.0):
            raise InvalidTelemetry(f"location.lat {lat} is outside -90..90")
        if not (-180.0 <= lon <= 180.0):
            raise InvalidTelemetry(f"location.lon {lon} is outside -180..180")
        # Geohash cells are half-open: the pole belongs to the cell just below it.
        cell = geohash.encode(min(lat, _BELOW_POLE), lon, GEOHASH_PRECISION)
        box = geohash.bbox(cell)
        zone = self.limits.zone_limit(cell)
        limit = entry.limit_kmh if zone is None else min(entry.limit_kmh, zone)
        entry.cell = cell
        entry.cell_bytes = _piece(geohash6=cell, speed_limit_kmh=limit)
        entry.south, entry.north, entry.west, entry.east = box["s"], box["n"], box["w"], box["e"]

    def enrich(
        self, events: Iterable[tuple[telemetry_pb2.Telemetry, bytes]], *, now_us: int
    ) -> EnrichedBatch:
        """Enrich ``(decoded telemetry, its raw bytes)`` pairs; ``now_us`` stamps the batch."""
        tail = _piece(enriched_time_us=now_us)
        vehicles = self._vehicles
        headers = self._headers
        gear_pieces = self._gear
        top = _MAX_TABULATED_KMH
        values: list[tuple[str, bytes]] = []
        append = values.append
        invalid: list[tuple[int, str]] = []
        unknown = 0
        for index, (t, raw) in enumerate(events):
            vid = t.vehicle_id
            entry = vehicles.get(vid)
            if entry is None:
                entry = self._entry(t)
            if not entry.known:
                unknown += 1
            elif t.fleet_id != entry.fleet:
                # Ingest refuses these already (the token's fleet must own the vehicle); one
                # that got past it must not raise an alert, call a driver or be stored under
                # either fleet.
                invalid.append((index, f"vehicle_id {vid!r} is not a vehicle of the event's fleet"))
                continue
            loc = t.location
            lat = loc.lat
            lon = loc.lon
            if not (entry.south <= lat < entry.north and entry.west <= lon < entry.east):
                try:
                    self._move(entry, lat, lon)
                except InvalidTelemetry as exc:
                    invalid.append((index, str(exc)))
                    continue
            if entry.electric:
                gear = gear_pieces[0]
            else:
                speed = t.motion.speed_kmh
                gear = gear_pieces[int(speed) if 0.0 <= speed < top else (top if speed > 0 else 0)]
            n = len(raw)
            header = headers.get(n)
            if header is None:
                header = headers[n] = _TELEMETRY_TAG + varint(n)
            append((vid, b"".join((header, raw, entry.static, entry.cell_bytes, gear, tail))))
        return EnrichedBatch(values, unknown, invalid)
