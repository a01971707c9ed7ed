"""What the rules read: one event (:class:`Reading`) or a batch of them (:class:`Columns`).

A non-finite input never triggers a rule: :class:`Columns` holds ±inf as NaN, and no comparison
with NaN holds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]
NAN = math.nan


class Reading:
    """The fields of one enriched event the rules look at, read once from the protobuf."""

    __slots__ = (
        "accel_x",
        "accel_y",
        "battery",
        "charging",
        "closing_speed",
        "coolant",
        "crash_alarm",
        "dtc_count",
        "electric",
        "expected_gear",
        "fleet_id",
        "fuel",
        "gear",
        "has_battery",
        "has_engine",
        "has_perception",
        "ignition",
        "inside",
        "last_service",
        "lat",
        "lon",
        "object_distance",
        "odometer",
        "power_cut",
        "rpm",
        "seq",
        "sos",
        "speed",
        "t_us",
        "tamper",
        "vehicle_limit",
        "zone_limit",
    )

    def __init__(
        self,
        *,
        seq: int = 1,
        t_us: int = 0,
        lat: float = 0.0,
        lon: float = 0.0,
        speed: float = 0.0,
        accel_x: float = 0.0,
        accel_y: float = 0.0,
        has_engine: bool = True,
        rpm: float = 0.0,
        gear: int = 0,
        fuel: float = 50.0,
        coolant: float = 90.0,
        ignition: bool = True,
        has_battery: bool = True,
        battery: float = 80.0,
        charging: bool = False,
        sos: bool = False,
        crash_alarm: bool = False,
        tamper: bool = False,
        power_cut: bool = False,
        dtc_count: float = 0.0,
        odometer: float = 0.0,
        last_service: float = 0.0,
        has_perception: bool = False,
        object_distance: float = 0.0,
        closing_speed: float = 0.0,
        zone_limit: float = 0.0,
        vehicle_limit: float = 0.0,
        expected_gear: int = 0,
        electric: bool = False,
        fleet_id: str = "",
        inside: tuple[bool, ...] = (),
    ) -> None:
        self.seq = seq
        self.t_us = t_us
        self.lat = lat
        self.lon = lon
        self.speed = speed
        self.accel_x = accel_x
        self.accel_y = accel_y
        self.has_engine = has_engine
        self.rpm = rpm
        self.gear = gear
        self.fuel = fuel
        self.coolant = coolant
        self.ignition = ignition
        self.has_battery = has_battery
        self.battery = battery
        self.charging = charging
        self.sos = sos
        self.crash_alarm = crash_alarm
        self.tamper = tamper
        self.power_cut = power_cut
        self.dtc_count = dtc_count  # how many diagnostic trouble codes the event reports
        self.odometer = odometer
        self.last_service = last_service  # the odometer at the last service; 0: not recorded
        self.has_perception = has_perception
        self.object_distance = object_distance
        self.closing_speed = closing_speed
        # 0: no zone limit here / no limit of the vehicle's own (see speeding.py).
        self.zone_limit = zone_limit
        self.vehicle_limit = vehicle_limit
        self.expected_gear = expected_gear
        self.electric = electric
        self.fleet_id = fleet_id
        # Per configured fence (in order): is the position inside it? Filled per batch.
        self.inside = inside


FLOAT_FIELDS = (
    "speed",
    "accel_x",
    "accel_y",
    "rpm",
    "gear",
    "fuel",
    "coolant",
    "battery",
    "object_distance",
    "closing_speed",
    "zone_limit",
    "vehicle_limit",
    "expected_gear",
    "dtc_count",
    "odometer",
    "last_service",
    "lat",
    "lon",
)
BOOL_FIELDS = (
    "ignition",
    "charging",
    "has_engine",
    "has_battery",
    "sos",
    "crash_alarm",
    "tamper",
    "power_cut",
    "has_perception",
    "electric",
)


class Columns:
    """A batch of readings as one numpy array per field (see :class:`Reading` for each field)."""

    speed: Floats
    accel_x: Floats
    accel_y: Floats
    rpm: Floats
    gear: Floats
    fuel: Floats
    coolant: Floats
    battery: Floats
    object_distance: Floats
    closing_speed: Floats
    zone_limit: Floats
    vehicle_limit: Floats
    expected_gear: Floats
    dtc_count: Floats
    odometer: Floats
    last_service: Floats
    lat: Floats
    lon: Floats
    ignition: Bools
    charging: Bools
    has_engine: Bools
    has_battery: Bools
    sos: Bools
    crash_alarm: Bools
    tamper: Bools
    power_cut: Bools
    has_perception: Bools
    electric: Bools

    def __init__(
        self,
        floats: dict[str, Sequence[float]],
        bools: dict[str, Sequence[bool]],
        *,
        fleet_ids: Sequence[str],
        inside: Sequence[tuple[bool, ...]] = (),
    ) -> None:
        for name in FLOAT_FIELDS:
            column = np.array(floats[name], dtype=np.float64)
            # ±inf would pass a threshold (an infinite deceleration is no crash); NaN passes none.
            column[np.isinf(column)] = NAN
            setattr(self, name, column)
        for name in BOOL_FIELDS:
            setattr(self, name, np.asarray(bools[name], dtype=np.bool_))
        self.size = len(fleet_ids)
        self.fleet_ids = np.asarray(fleet_ids, dtype=object)
        # Per configured fence (in order), a column: is the position inside it?
        self.inside: list[Bools] = (
            [np.asarray(col, dtype=np.bool_) for col in zip(*inside, strict=True)] if inside else []
        )

    @classmethod
    def of(cls, readings: Sequence[Reading]) -> Columns:
        return cls(
            {name: [getattr(r, name) for r in readings] for name in FLOAT_FIELDS},
            {name: [getattr(r, name) for r in readings] for name in BOOL_FIELDS},
            fleet_ids=[r.fleet_id for r in readings],
            inside=[r.inside for r in readings],
        )

    def reading(self, i: int) -> Reading:
        """Row ``i`` as a :class:`Reading` (times and seq are the caller's to fill in)."""
        r = Reading(fleet_id=str(self.fleet_ids[i]))
        for name in FLOAT_FIELDS:
            setattr(r, name, float(getattr(self, name)[i]))
        for name in BOOL_FIELDS:
            setattr(r, name, bool(getattr(self, name)[i]))
        r.inside = tuple(bool(col[i]) for col in self.inside)
        return r
