"""The vehicle registry: who drives what, in which fleet, and how to reach the driver.

Loaded from a CSV or YAML file (mounted from a ConfigMap in Kubernetes) and reloaded when the
file changes, without a restart. CSV is the format for large fleets: 100K vehicles load in well
under a second. Both formats have the same fields:

    vehicle_id, fleet_id, vehicle_type, model, driver_id, driver_name, driver_phone,
    driver_whatsapp, speed_profile, electric, last_service_km, colour, fuel

YAML is ``{"vehicles": [{...}, ...]}``. Only ``vehicle_id`` and ``fleet_id`` are required.
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from fleetpipe.core.errors import ConfigError
from fleetpipe.core.watch import WatchedFile

log = logging.getLogger(__name__)

VEHICLE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
PHONE_RE = re.compile(r"^\+[1-9][0-9]{6,14}$")  # E.164, as Twilio expects
VEHICLE_TYPES = frozenset({"car", "van", "truck", "bus", "motorcycle", "ev", "robotaxi"})
FUELS = frozenset({"petrol", "diesel", "electric", "hybrid", "cng", "lpg", "hydrogen"})


class RegistryError(ConfigError):
    """A registry file that cannot be used; the message names the file, the row and the field."""


@dataclass(frozen=True, slots=True)
class Vehicle:
    vehicle_id: str
    fleet_id: str
    vehicle_type: str = "car"
    model: str = ""
    driver_id: str = ""
    driver_name: str = ""
    driver_phone: str = ""
    driver_whatsapp: str = ""
    speed_profile: str = "urban"
    electric: bool = False
    # The odometer reading (km) at the last service; 0: not recorded (no service-due alert).
    last_service_km: float = 0.0
    # Dimensions for analytics (the vehicles table): free text, and one of FUELS or empty.
    colour: str = ""
    fuel: str = ""

    @property
    def fuel_kind(self) -> str:
        """The fuel, or "electric" for an electric vehicle that names none."""
        return self.fuel or ("electric" if self.electric else "")


FIELDS = tuple(f.name for f in fields(Vehicle))


def _vehicle(row: Mapping[str, Any], where: str) -> Vehicle:
    unknown = set(row) - set(FIELDS)
    if unknown:
        raise RegistryError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    vid = str(row.get("vehicle_id") or "").strip()
    if not VEHICLE_ID_RE.match(vid):
        raise RegistryError(f"{where}: vehicle_id {vid!r} is missing or malformed")
    fleet = str(row.get("fleet_id") or "").strip()
    if not fleet:
        raise RegistryError(f"{where}: fleet_id is missing for {vid}")
    vtype = str(row.get("vehicle_type") or "car").strip()
    if vtype not in VEHICLE_TYPES:
        raise RegistryError(
            f"{where}: vehicle_type {vtype!r} is not one of {', '.join(sorted(VEHICLE_TYPES))}"
        )
    for phone_field in ("driver_phone", "driver_whatsapp"):
        phone = str(row.get(phone_field) or "").strip()
        if phone and not PHONE_RE.match(phone):
            raise RegistryError(f"{where}: {phone_field} {phone!r} is not an E.164 number")
    raw_service = row.get("last_service_km") or 0
    try:
        last_service_km = float(raw_service)
    except (TypeError, ValueError):
        raise RegistryError(
            f"{where}: last_service_km {raw_service!r} is not a number of km"
        ) from None
    if not 0 <= last_service_km < 10_000_000:
        raise RegistryError(f"{where}: last_service_km {last_service_km} is out of range")
    fuel = str(row.get("fuel") or "").strip().lower()
    if fuel and fuel not in FUELS:
        raise RegistryError(f"{where}: fuel {fuel!r} is not one of {', '.join(sorted(FUELS))}")
    electric = row.get("electric", False)
    if isinstance(electric, str):
        electric = electric.strip().lower() in {"1", "true", "yes", "y"}
    return Vehicle(
        vehicle_id=vid,
        fleet_id=fleet,
        vehicle_type=vtype,
        model=str(row.get("model") or ""),
        driver_id=str(row.get("driver_id") or ""),
        driver_name=str(row.get("driver_name") or ""),
        driver_phone=str(row.get("driver_phone") or "").strip(),
        driver_whatsapp=str(row.get("driver_whatsapp") or "").strip(),
        speed_profile=str(row.get("speed_profile") or "urban"),
        electric=bool(electric),
        last_service_km=last_service_km,
        colour=str(row.get("colour") or "").strip(),
        fuel=fuel,
    )


class VehicleRegistry:
    """An immutable snapshot of the registry; a reload builds a new one."""

    def __init__(self, vehicles: Iterable[Vehicle], *, source: str = "") -> None:
        self._by_id: dict[str, Vehicle] = {}
        for v in vehicles:
            if v.vehicle_id in self._by_id:
                raise RegistryError(f"{source}: vehicle {v.vehicle_id} appears twice")
            self._by_id[v.vehicle_id] = v
        self.source = source

    def get(self, vehicle_id: str) -> Vehicle | None:
        return self._by_id.get(vehicle_id)

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[Vehicle]:
        return iter(self._by_id.values())

    def __contains__(self, vehicle_id: object) -> bool:
        return vehicle_id in self._by_id

    @classmethod
    def load(cls, path: Path) -> VehicleRegistry:
        try:
            text = path.read_text()
        except OSError as exc:
            raise RegistryError(f"cannot read vehicle registry {path}: {exc}") from exc
        if path.suffix.lower() in {".yaml", ".yml", ".json"}:
            return cls(_from_yaml(text, str(path)), source=str(path))
        if path.suffix.lower() == ".csv":
            return cls(_from_csv(text, str(path)), source=str(path))
        raise RegistryError(f"{path}: the registry must be .csv, .yaml, .yml or .json")


def _from_csv(text: str, source: str) -> Iterator[Vehicle]:
    reader = csv.DictReader(text.splitlines())
    if reader.fieldnames is None or "vehicle_id" not in reader.fieldnames:
        raise RegistryError(f"{source}: the CSV header must name vehicle_id (and fleet_id)")
    for line, row in enumerate(reader, start=2):
        yield _vehicle(
            {k: v for k, v in row.items() if k and v not in (None, "")}, f"{source}:{line}"
        )


def _from_yaml(text: str, source: str) -> Iterator[Vehicle]:
    try:
        doc = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506
    except yaml.YAMLError as exc:
        raise RegistryError(f"{source}: not valid YAML: {exc}") from exc
    rows = doc.get("vehicles") if isinstance(doc, dict) else None
    if not isinstance(rows, list):
        raise RegistryError(f"{source}: expected a mapping with a 'vehicles' list")
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise RegistryError(f"{source}: vehicles[{i}] is not a mapping")
        yield _vehicle(row, f"{source}: vehicles[{i}]")


def write_csv(vehicles: Iterable[Vehicle], path: Path) -> None:
    """Write a registry atomically (a reader never sees half a file)."""
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(FIELDS)
        for v in vehicles:
            writer.writerow([getattr(v, name) for name in FIELDS])
    tmp.replace(path)


class RegistryWatcher(WatchedFile[VehicleRegistry]):
    """Holds the current registry and reloads it when its file changes (see WatchedFile)."""

    def __init__(self, path: Path, *, check_interval_s: float = 5.0) -> None:
        super().__init__(
            path, VehicleRegistry.load, what="vehicle registry", check_interval_s=check_interval_s
        )
