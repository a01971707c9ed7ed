"""One tick of the fleet's events, as columns, and the rare variable-length parts of an event.

:mod:`fleetpipe_loadtest.wire` turns a :class:`Tick` into protobuf bytes without building
messages; :meth:`Tick.message` builds one (the slow path: tests, tools, rare events).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from fleetpipe.pb.v1 import telemetry_pb2
from fleetpipe_loadtest.arrays import F64, I64, U64, Flags


@dataclass(frozen=True, slots=True)
class Extras:
    """The rare, variable-length parts of an event (encoded on the slow path)."""

    dtc_codes: tuple[str, ...] = ()
    driving_events: tuple[tuple[int, str], ...] = ()  # (DrivingEventKind, reason)


class Tick:
    """The events of one tick, as columns (one row per emitting vehicle, in vehicle order)."""

    __slots__ = (
        "accel_x",
        "accel_y",
        "accel_z",
        "accuracy",
        "altitude",
        "battery_pct",
        "battery_v",
        "charging",
        "coolant",
        "crash",
        "event_time_us",
        "extras",
        "fleet_id",
        "fuel",
        "gear",
        "heading",
        "id_bytes",
        "ignition",
        "index",
        "lat",
        "lon",
        "odometer",
        "p_class",
        "p_closing",
        "p_distance",
        "perception",
        "rpm",
        "seq",
        "sos",
        "speed_kmh",
        "vehicle",
    )

    def __init__(self, index: int, fleet_id: str, columns: Mapping[str, Any]) -> None:
        self.index = index
        self.fleet_id = fleet_id
        self.extras: dict[int, Extras] = columns["extras"]
        self.vehicle: I64 = columns["vehicle"]
        self.id_bytes: npt.NDArray[np.bytes_] = columns["id_bytes"]
        self.seq: U64 = columns["seq"]
        self.event_time_us: I64 = columns["event_time_us"]
        self.lat: F64 = columns["lat"]
        self.lon: F64 = columns["lon"]
        self.altitude: F64 = columns["altitude"]
        self.accuracy: F64 = columns["accuracy"]
        self.heading: F64 = columns["heading"]
        self.speed_kmh: F64 = columns["speed_kmh"]
        self.accel_x: F64 = columns["accel_x"]
        self.accel_y: F64 = columns["accel_y"]
        self.accel_z: F64 = columns["accel_z"]
        self.rpm: I64 = columns["rpm"]
        self.gear: I64 = columns["gear"]
        self.fuel: F64 = columns["fuel"]
        self.coolant: F64 = columns["coolant"]
        self.ignition: Flags = columns["ignition"]
        self.battery_pct: F64 = columns["battery_pct"]
        self.battery_v: F64 = columns["battery_v"]
        self.charging: Flags = columns["charging"]
        self.odometer: F64 = columns["odometer"]
        self.sos: Flags = columns["sos"]
        self.crash: Flags = columns["crash"]
        self.perception: Flags = columns["perception"]
        self.p_class: I64 = columns["p_class"]
        self.p_distance: F64 = columns["p_distance"]
        self.p_closing: F64 = columns["p_closing"]

    def __len__(self) -> int:
        return len(self.vehicle)

    def message(self, row: int) -> telemetry_pb2.Telemetry:
        """Row ``row`` as a protobuf message (the slow path: tests, tools, rare events)."""
        m = telemetry_pb2.Telemetry(
            vehicle_id=self.id_bytes[row].decode(),
            seq=int(self.seq[row]),
            event_time_us=int(self.event_time_us[row]),
            fleet_id=self.fleet_id,
            location=telemetry_pb2.Location(
                lat=float(self.lat[row]),
                lon=float(self.lon[row]),
                altitude_m=float(self.altitude[row]),
                accuracy_m=float(self.accuracy[row]),
                heading_deg=float(self.heading[row]),
            ),
            motion=telemetry_pb2.Motion(
                speed_kmh=float(self.speed_kmh[row]),
                accel_x_ms2=float(self.accel_x[row]),
                accel_y_ms2=float(self.accel_y[row]),
                accel_z_ms2=float(self.accel_z[row]),
            ),
            engine=telemetry_pb2.Engine(
                rpm=int(self.rpm[row]),
                gear=int(self.gear[row]),
                fuel_pct=float(self.fuel[row]),
                coolant_temp_c=float(self.coolant[row]),
                ignition=bool(self.ignition[row]),
            ),
            battery=telemetry_pb2.Battery(
                pct=float(self.battery_pct[row]),
                voltage=float(self.battery_v[row]),
                charging=bool(self.charging[row]),
            ),
            odometer_km=float(self.odometer[row]),
            alarms=telemetry_pb2.DeviceAlarms(sos=bool(self.sos[row]), crash=bool(self.crash[row])),
        )
        if self.perception[row]:
            m.perception.nearest_object_class = cast(
                telemetry_pb2.ObjectClass, int(self.p_class[row])
            )
            m.perception.nearest_object_distance_m = float(self.p_distance[row])
            m.perception.closing_speed_ms = float(self.p_closing[row])
        extras = self.extras.get(row)
        if extras is not None:
            m.dtc_codes.extend(extras.dtc_codes)
            for kind, reason in extras.driving_events:
                m.driving_events.add(kind=cast(telemetry_pb2.DrivingEventKind, kind), reason=reason)
        return m

    def messages(self) -> list[telemetry_pb2.Telemetry]:
        return [self.message(r) for r in range(len(self))]
