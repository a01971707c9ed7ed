"""Scripted vehicle timelines: exact, readable event sequences for tests and drills.

Where the simulator makes believable fleets, a timeline makes *precise* ones::

    drive = Timeline("v-1")
    events = drive.emit(30, speed=50) + drive.emit(20, speed=95) + drive.emit(30, speed=50)

Each step advances the clock by ``step_s`` and the position along the heading at the current
speed; ``emit`` changes the given readings first and returns the enriched events (the
telemetry inside carries increasing ``seq``).
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable
from typing import Any

import geohash

from fleetpipe.core.gearbox import expected_gear
from fleetpipe.pb.v1 import enriched_pb2, telemetry_pb2

T0_US = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z

_READINGS = {
    "speed": 0.0,
    "accel_x": 0.0,
    "accel_y": 0.0,
    "rpm": 2000,
    "gear": None,  # None: the gear expected at the speed
    "fuel": 60.0,
    "coolant": 90.0,
    "ignition": True,
    "battery": 80.0,
    "charging": False,
    "sos": False,
    "crash": False,
    "object_distance": None,  # None: no perception block
    "closing_speed": 0.0,
    "hint": "",
    "limit": 80.0,
}


class Timeline:
    def __init__(
        self,
        vehicle_id: str,
        *,
        start_us: int = T0_US,
        fleet_id: str = "fleet-1",
        driver_id: str | None = None,
        lat: float = 52.37,
        lon: float = 4.89,
        heading_deg: float = 90.0,
        step_s: float = 1.0,
        electric: bool = False,
        engine: bool = True,
        **readings: Any,
    ) -> None:
        unknown = set(readings) - set(_READINGS)
        if unknown:
            raise TypeError(f"unknown readings: {', '.join(sorted(unknown))}")
        self.vehicle_id = vehicle_id
        self.fleet_id = fleet_id
        self.driver_id = driver_id if driver_id is not None else f"drv-{vehicle_id}"
        self.t_us = start_us
        self.seq = 0
        self.lat = lat
        self.lon = lon
        self.heading = heading_deg
        self.step_us = int(step_s * 1e6)
        self.electric = electric
        self.engine = engine
        self.readings = {**_READINGS, **readings}

    def set(self, **readings: Any) -> None:
        unknown = set(readings) - set(_READINGS)
        if unknown:
            raise TypeError(f"unknown readings: {', '.join(sorted(unknown))}")
        self.readings.update(readings)

    def pause(self, seconds: float) -> None:
        """Silence: the clock moves on, nothing is sent."""
        self.t_us += int(seconds * 1e6)

    def emit(self, steps: int = 1, **readings: Any) -> list[enriched_pb2.EnrichedTelemetry]:
        self.set(**readings)
        return [self._step() for _ in range(steps)]

    def _step(self) -> enriched_pb2.EnrichedTelemetry:
        r = self.readings
        speed = float(r["speed"])
        dist_km = speed * self.step_us / 3.6e9
        rad = math.radians(self.heading)
        self.lat += dist_km / 111.32 * math.cos(rad)
        self.lon += dist_km / (111.32 * math.cos(math.radians(self.lat))) * math.sin(rad)
        self.t_us += self.step_us
        self.seq += 1
        gear_expected = 0 if self.electric else expected_gear(speed)
        t = telemetry_pb2.Telemetry(
            vehicle_id=self.vehicle_id,
            seq=self.seq,
            event_time_us=self.t_us,
            ingest_time_us=self.t_us + 20_000,
            fleet_id=self.fleet_id,
            location=telemetry_pb2.Location(
                lat=self.lat, lon=self.lon, accuracy_m=4.0, heading_deg=self.heading
            ),
            motion=telemetry_pb2.Motion(
                speed_kmh=speed, accel_x_ms2=r["accel_x"], accel_y_ms2=r["accel_y"]
            ),
            battery=telemetry_pb2.Battery(pct=r["battery"], voltage=12.6, charging=r["charging"]),
            trip_hint=r["hint"],
            odometer_km=10_000.0,
        )
        if self.engine:
            t.engine.CopyFrom(
                telemetry_pb2.Engine(
                    rpm=int(r["rpm"]),
                    gear=gear_expected if r["gear"] is None else int(r["gear"]),
                    fuel_pct=r["fuel"],
                    coolant_temp_c=r["coolant"],
                    ignition=r["ignition"],
                )
            )
        if r["sos"] or r["crash"]:
            t.alarms.CopyFrom(telemetry_pb2.DeviceAlarms(sos=r["sos"], crash=r["crash"]))
        if r["object_distance"] is not None:
            t.perception.CopyFrom(
                telemetry_pb2.Perception(
                    nearest_object_class=telemetry_pb2.OBJECT_CLASS_VEHICLE,
                    nearest_object_distance_m=r["object_distance"],
                    closing_speed_ms=r["closing_speed"],
                )
            )
        return enriched_pb2.EnrichedTelemetry(
            telemetry=t,
            vehicle=enriched_pb2.VehicleInfo(
                fleet_id=self.fleet_id,
                vehicle_type="ev" if self.electric else "van",
                driver_id=self.driver_id,
                electric=self.electric,
            ),
            geohash6=geohash.encode(self.lat, self.lon, 6),
            speed_limit_kmh=r["limit"],
            expected_gear=gear_expected,
            known=True,
            enriched_time_us=self.t_us + 40_000,
        )


Script = Callable[[Timeline], list[enriched_pb2.EnrichedTelemetry]]


def cruise(tl: Timeline, seconds: int = 60) -> list[enriched_pb2.EnrichedTelemetry]:
    return tl.emit(seconds, speed=50.0)


# One episode of each rule, scripted with the default thresholds; "normal driving" has none.
SCENARIOS: dict[str, Script] = {
    "normal driving": lambda tl: cruise(tl, 600),
    "speeding": lambda tl: tl.emit(30, speed=95.0) + cruise(tl),
    "low_fuel": lambda tl: tl.emit(60, fuel=8.0) + tl.emit(90, fuel=60.0),
    "overheating": lambda tl: tl.emit(20, coolant=215.0) + tl.emit(60, coolant=90.0),
    "low_battery": lambda tl: tl.emit(60, battery=12.0) + tl.emit(90, battery=80.0),
    "over_revving": lambda tl: tl.emit(5, rpm=6500) + tl.emit(10, rpm=2000),
    "gear_mismatch": lambda tl: tl.emit(20, gear=1) + tl.emit(10, gear=None),
    "harsh_braking": lambda tl: tl.emit(1, accel_x=-6.0) + tl.emit(10, accel_x=0.0),
    "harsh_acceleration": lambda tl: tl.emit(1, accel_x=4.5) + tl.emit(10, accel_x=0.0),
    "crash": lambda tl: (
        tl.emit(1, accel_x=-45.0, speed=0.0) + tl.emit(70, accel_x=0.0, speed=0.0, ignition=False)
    ),
    "sos": lambda tl: tl.emit(5, sos=True) + tl.emit(15, sos=False),
    "idling": lambda tl: tl.emit(400, speed=0.0) + cruise(tl),
    "collision_risk": lambda tl: (
        tl.emit(3, object_distance=10.0, closing_speed=8.0)
        + tl.emit(5, object_distance=80.0, closing_speed=1.0)
    ),
}


def drill_fleet(
    vehicles: int, *, episodes: int = 4, seed: int = 1, fleet_id: str = "fleet-1"
) -> list[enriched_pb2.EnrichedTelemetry]:
    """A fleet each of whose vehicles drives ``episodes`` random scenarios between cruising,
    then parks; merged in event-time order as a partition would carry it."""
    rng = random.Random(seed)
    lines = []
    for i in range(vehicles):
        tl = Timeline(
            f"{fleet_id}-drill-{i:05d}",
            fleet_id=fleet_id,
            lat=52.0 + i * 1e-3,
            start_us=T0_US + i * 1000,
        )
        events = cruise(tl, 30)
        for _ in range(episodes):
            events += SCENARIOS[rng.choice(list(SCENARIOS))](tl) + cruise(tl, 30)
        events += tl.emit(5, speed=0.0, ignition=False)
        lines.append(events)
    return list(heapq.merge(*lines, key=lambda e: e.telemetry.event_time_us))
