"""The vehicle catalogue: types with their driving and energy figures, drivetrain, registry rows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fleetpipe.core.gearbox import GEAR_UPPER_KMH
from fleetpipe.registry import Vehicle
from fleetpipe_loadtest.synthetic import vehicle_id

# rpm per km/h in each gear (index = gear); with 800 rpm at rest, ≤ 3,300 rpm in normal driving.
RPM_PER_KMH = np.array([0.0, 90.0, 55.0, 38.0, 30.0, 25.0, 21.0])
# GEAR_UPPER_KMH as an array: searchsorted of a speed in it is the expected gear.
GEAR_UPPER_KMH_ARRAY = np.array(GEAR_UPPER_KMH)

DRIVER_FIRST_NAMES = (
    "Ana", "Ben", "Chen", "Dara", "Emil", "Fatima", "Gus", "Hana", "Ivo", "Jun", "Kai",
)  # fmt: skip
DRIVER_LAST_NAMES = (
    "Jansen", "Okafor", "Novak", "Silva", "Haddad", "Kowalski", "Nguyen", "Meyer", "Rossi",
)  # fmt: skip


@dataclass(frozen=True)
class VehicleType:
    name: str
    share: float  # of the default mix
    electric: bool
    perception: bool
    heavy: bool
    cruise_kmh: tuple[float, float]
    accel_ms2: tuple[float, float]
    brake_ms2: tuple[float, float]
    energy_pct_per_km: float  # fuel (combustion) or battery (electric)
    legs: tuple[int, int]
    stop_s: tuple[float, float]  # stops with the ignition on between legs
    delivery_share: float  # share of stops made with the ignition off (1–5 min)
    speed_profile: str
    models: tuple[str, ...]


VEHICLE_TYPES: tuple[VehicleType, ...] = (
    VehicleType("car", 0.35, False, False, False, (35, 52), (1.2, 2.0), (1.6, 2.4), 0.12,
                (3, 8), (10, 60), 0.15, "urban", ("Toyota Corolla", "Volkswagen Golf")),
    VehicleType("van", 0.25, False, False, False, (32, 48), (1.0, 1.6), (1.5, 2.2), 0.15,
                (4, 9), (10, 60), 0.40, "urban", ("Ford Transit", "Mercedes-Benz Sprinter")),
    VehicleType("truck", 0.10, False, False, True, (30, 45), (0.6, 1.0), (1.2, 1.8), 0.08,
                (2, 6), (15, 60), 0.30, "heavy", ("Volvo FH", "DAF XF", "Scania R")),
    VehicleType("bus", 0.05, False, False, True, (28, 40), (0.7, 1.1), (1.2, 1.8), 0.10,
                (6, 12), (15, 45), 0.0, "heavy", ("Mercedes-Benz Citaro", "VDL Citea")),
    VehicleType("motorcycle", 0.05, False, False, False, (35, 52), (1.5, 2.2), (1.8, 2.5), 0.25,
                (2, 6), (10, 60), 0.10, "urban", ("Honda CB500F", "BMW R 1250 GS")),
    VehicleType("ev", 0.15, True, False, False, (35, 52), (1.4, 2.2), (1.6, 2.4), 0.30,
                (3, 8), (10, 60), 0.15, "urban", ("Tesla Model 3", "Nissan Leaf", "Kia EV6")),
    VehicleType("robotaxi", 0.05, True, True, False, (30, 45), (1.0, 1.5), (1.4, 2.0), 0.30,
                (2, 5), (20, 90), 0.0, "urban", ("Jaguar I-PACE AV", "Zeekr RT")),
)  # fmt: skip
VEHICLE_TYPE_INDEX = {t.name: i for i, t in enumerate(VEHICLE_TYPES)}


COLOURS = ("white", "black", "silver", "grey", "blue", "red", "green", "yellow")


def fuel_of(num: int, vtype: VehicleType) -> str:
    """Electric types run on electricity, heavy ones on diesel, one car or van in five is a
    hybrid and the rest run on petrol."""
    if vtype.electric:
        return "electric"
    if vtype.heavy:
        return "diesel"
    return "hybrid" if num % 5 == 0 else "petrol"


def registry_entry(num: int, vtype: VehicleType, *, fleet_id: str, id_prefix: str) -> Vehicle:
    """The registry row of vehicle ``num``: its model and a driver with E.164 numbers."""
    phone = f"+1555{num:07d}"
    first = DRIVER_FIRST_NAMES[num % len(DRIVER_FIRST_NAMES)]
    last = DRIVER_LAST_NAMES[(num // len(DRIVER_FIRST_NAMES)) % len(DRIVER_LAST_NAMES)]
    return Vehicle(
        vehicle_id=vehicle_id(num, id_prefix),
        fleet_id=fleet_id,
        vehicle_type=vtype.name,
        model=vtype.models[num % len(vtype.models)],
        driver_id=f"{id_prefix}-drv-{num:06d}",
        driver_name=f"{first} {last}",
        driver_phone=phone,
        driver_whatsapp=phone if num % 2 == 0 else "",
        speed_profile=vtype.speed_profile,
        electric=vtype.electric,
        colour=COLOURS[(num * 7) % len(COLOURS)],
        fuel=fuel_of(num, vtype),
    )
