"""Plain, valid telemetry in bulk: for tests, benchmarks and the first demo.

The realistic fleet (routes, trips, injected scenarios) is the simulator's job; this module only
makes well-formed events quickly, deterministic from their vehicle and sequence number.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator

from fleetpipe.pb.v1 import telemetry_pb2


def vehicle_id(index: int, fleet: str = "fleet-1") -> str:
    return f"{fleet}-veh-{index:06d}"


def telemetry(
    vehicle_index: int,
    seq: int,
    *,
    fleet: str = "fleet-1",
    event_time_us: int | None = None,
) -> telemetry_pb2.Telemetry:
    t = event_time_us if event_time_us is not None else time.time_ns() // 1000
    phase = (vehicle_index * 7 + seq) % 360
    return telemetry_pb2.Telemetry(
        vehicle_id=vehicle_id(vehicle_index, fleet),
        fleet_id=fleet,
        seq=seq,
        event_time_us=t,
        location=telemetry_pb2.Location(
            lat=52.37 + 0.01 * math.sin(math.radians(phase)) + vehicle_index * 1e-4,
            lon=4.89 + 0.01 * math.cos(math.radians(phase)),
            altitude_m=5.0,
            accuracy_m=4.0,
            heading_deg=float(phase),
        ),
        motion=telemetry_pb2.Motion(speed_kmh=40.0 + (seq % 30), accel_x_ms2=0.1),
        engine=telemetry_pb2.Engine(
            rpm=1800 + (seq % 400), gear=3, fuel_pct=60.0, coolant_temp_c=90.0, ignition=True
        ),
        battery=telemetry_pb2.Battery(pct=80.0, voltage=12.6, charging=False),
        odometer_km=10_000.0 + seq * 0.01,
    )


def stream(
    vehicles: int, events: int, *, fleet: str = "fleet-1"
) -> Iterator[telemetry_pb2.Telemetry]:
    """``events`` events round-robin over ``vehicles`` vehicles, seq starting at 1 for each."""
    for i in range(events):
        yield telemetry(i % vehicles, i // vehicles + 1, fleet=fleet)
