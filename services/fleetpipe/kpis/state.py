"""The KPI stage's state on its changelog (``KpiState`` in kpi.proto), and its output records."""

from __future__ import annotations

from fleetpipe.kpis.windows import Pane, PartitionProgress, VehicleWindows, WindowFigures
from fleetpipe.pb.v1 import kpi_pb2

PARTITION_KEY_PREFIX = "#partition/"


def partition_key(partition: int) -> str:
    """The changelog key of a partition's progress: ``#`` is in no vehicle id."""
    return f"{PARTITION_KEY_PREFIX}{partition}"


def encode_vehicle(vehicle: VehicleWindows) -> bytes:
    msg = kpi_pb2.KpiVehicle(
        vehicle_id=vehicle.vehicle_id,
        fleet_id=vehicle.fleet_id,
        model=vehicle.model,
        vehicle_type=vehicle.vehicle_type,
        partition=vehicle.partition,
    )
    for start, pane in sorted(vehicle.panes.items()):
        msg.panes.add(
            start_us=start,
            samples=pane.samples,
            speed_sum_kmh=pane.speed_sum,
            speed_max_kmh=pane.speed_max,
            odometer_min_km=pane.odometer_min,
            odometer_max_km=pane.odometer_max,
            alerts=pane.alerts,
        )
    return kpi_pb2.KpiState(vehicle=msg).SerializeToString()


def encode_progress(progress: PartitionProgress, *, topic: str) -> bytes:
    msg = kpi_pb2.KpiPartition(partition=progress.partition, next_end_us=progress.next_end_us)
    msg.marks.add(topic=topic, newest_event_us=progress.newest_us)
    return kpi_pb2.KpiState(partition=msg).SerializeToString()


def vehicle_from(msg: kpi_pb2.KpiVehicle) -> VehicleWindows:
    vehicle = VehicleWindows(
        msg.vehicle_id,
        msg.fleet_id,
        msg.partition,
        model=msg.model,
        vehicle_type=msg.vehicle_type,
    )
    for p in msg.panes:
        pane = Pane()
        pane.samples = p.samples
        pane.speed_sum = p.speed_sum_kmh
        pane.speed_max = p.speed_max_kmh
        pane.odometer_min = p.odometer_min_km
        pane.odometer_max = p.odometer_max_km
        pane.alerts = dict(p.alerts)
        vehicle.panes[p.start_us] = pane
    return vehicle


def progress_from(msg: kpi_pb2.KpiPartition, *, topic: str, now: float) -> PartitionProgress:
    newest = next((m.newest_event_us for m in msg.marks if m.topic == topic), 0)
    # Quiet time is processing time: a restored partition starts its count afresh.
    return PartitionProgress(
        msg.partition, next_end_us=msg.next_end_us, newest_us=newest, quiet_since=now
    )


def encode_figures(figures: WindowFigures) -> bytes:
    return kpi_pb2.FleetKpi(
        window_start_us=figures.start_us,
        window_end_us=figures.end_us,
        fleet_id=figures.fleet_id,
        dimension=figures.dimension,
        dimension_value=figures.value,
        source_partition=figures.partition,
        active_vehicles=figures.active_vehicles,
        distance_km=figures.distance_km,
        max_speed_kmh=figures.max_speed_kmh,
        speed_sum_kmh=figures.speed_sum_kmh,
        speed_samples=figures.speed_samples,
        alerts_by_rule=dict(figures.alerts),
    ).SerializeToString()
