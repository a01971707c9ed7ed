"""The KPI stage's changelog records read back as what was written."""

from __future__ import annotations

import pytest

from fleetpipe.kpis.state import (
    encode_progress,
    encode_vehicle,
    partition_key,
    progress_from,
    vehicle_from,
)
from fleetpipe.kpis.windows import PartitionProgress, VehicleWindows
from fleetpipe.pb.v1 import kpi_pb2
from fleetpipe.registry import VEHICLE_ID_RE

pytestmark = pytest.mark.unit


def test_a_vehicle_and_its_panes_round_trip() -> None:
    vehicle = VehicleWindows("veh-1", "fleet-1", 4, model="Volvo FH", vehicle_type="truck")
    pane = vehicle.pane(1_000_000)
    pane.add_sample(42.5, 1200.25)
    pane.add_sample(60.0, 1200.75)
    pane.alerts["speeding"] = 2
    vehicle.pane(2_000_000).add_sample(0.0, 0.0)
    state = kpi_pb2.KpiState.FromString(encode_vehicle(vehicle))
    assert state.WhichOneof("state") == "vehicle"
    back = vehicle_from(state.vehicle)
    assert (back.vehicle_id, back.fleet_id, back.partition) == ("veh-1", "fleet-1", 4)
    assert (back.model, back.vehicle_type) == ("Volvo FH", "truck")
    assert set(back.panes) == {1_000_000, 2_000_000}
    got = back.panes[1_000_000]
    assert (got.samples, got.speed_sum, got.speed_max) == (2, 102.5, 60.0)
    assert (got.odometer_min, got.odometer_max, got.alerts) == (1200.25, 1200.75, {"speeding": 2})
    assert back.panes[2_000_000].odometer_max == 0, "no odometer reading stays none"


def test_a_partitions_progress_round_trips_and_its_key_is_no_vehicle_id() -> None:
    progress = PartitionProgress(7, next_end_us=5_000_000, newest_us=14_000_000, quiet_since=1.0)
    state = kpi_pb2.KpiState.FromString(encode_progress(progress, topic="enriched"))
    back = progress_from(state.partition, topic="enriched", now=99.0)
    assert (back.partition, back.next_end_us, back.newest_us) == (7, 5_000_000, 14_000_000)
    assert back.quiet_since == 99.0, "quiet time counts afresh after a restore"
    assert not VEHICLE_ID_RE.match(partition_key(7))
