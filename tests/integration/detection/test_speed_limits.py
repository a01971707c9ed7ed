"""Which speed opens a speeding alert, and with which severity, through real enrichment and
detection on the broker: the zone's limit, the vehicle type's, the FleetPipeline's threshold
and the critical tier, each as enrichment really stamps it (see fleetpipe.detection.speeding).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from fleetpipe.core.settings import KafkaSettings, Topics
from fleetpipe.pb.v1 import alert_pb2
from fleetpipe.registry import Vehicle
from support.stages import Stages, telemetry

pytestmark = pytest.mark.integration

# Enrichment's own default is 80, as in production: the FleetPipeline's threshold (100) must
# still be what applies outside every zone.
LIMITS = """
default_kmh: 80
vehicle_types: {truck: 70}
zones: {u17: 110, u173zm: 50}
"""
RULES = """
speeding:
  threshold_kmh: 100
  hysteresis_kmh: 0
  min_duration_s: 0
  clear_after_s: 0
  tiers: [{severity: critical, above_kmh: 130}]
gear_mismatch: {enabled: false}  # the ramp keeps one gear: not what this test is about
"""
TOWN = (52.37, 4.89)  # geohash u173zm: a 50 zone
MOTORWAY = (52.25, 4.60)  # u17 but not u173zm: a 110 zone
COUNTRY = (10.0, 10.0)  # in no zone
# Every vehicle ramps up from 40 km/h in steps of 5, one event a second.
RAMP = [40.0 + 5 * i for i in range(23)]  # 40 .. 150
WARNING = alert_pb2.SEVERITY_WARNING
CRITICAL = alert_pb2.SEVERITY_CRITICAL


class Case(NamedTuple):
    vehicle: str  # one vehicle per row, so the rows' episodes are independent
    vehicle_type: str
    position: tuple[float, float]
    opens: dict[int, float]  # severity -> the speed of the event that opened its alert


CASES = [
    Case("zone-limit", "car", TOWN, {WARNING: 55.0, CRITICAL: 135.0}),
    Case("zone-limit-above-the-threshold", "car", MOTORWAY, {WARNING: 115.0, CRITICAL: 135.0}),
    Case("type-limit", "truck", COUNTRY, {WARNING: 75.0, CRITICAL: 135.0}),
    Case("type-limit-caps-the-zone", "truck", MOTORWAY, {WARNING: 75.0, CRITICAL: 135.0}),
    Case("cr-threshold-over-enrichment-default", "car", COUNTRY, {WARNING: 105.0, CRITICAL: 135.0}),
]


@pytest.fixture
def stages(kafka_settings: KafkaSettings, topics: Topics, tmp_path: Path) -> Iterator[Stages]:
    run = Stages(kafka_settings, topics, tmp_path)
    yield run
    run.stop()


def test_the_speed_that_opens_an_alert_and_its_severity(stages: Stages) -> None:
    stages.start(
        vehicles=[Vehicle(c.vehicle, "fleet-1", c.vehicle_type, "M", "d-1", "D") for c in CASES],
        limits=LIMITS,
        rules=RULES,
    )
    t0 = 1_800_000_000_000_000
    stages.send(
        (c.vehicle, telemetry(c.vehicle, i + 1, speed=v, lat=lat, lon=lon, t_us=t0 + i * 10**6))
        for c in CASES
        for lat, lon in [c.position]
        for i, v in enumerate(RAMP)
    )
    alerts = stages.processed()
    opened: dict[str, dict[int, float]] = {}
    for a in alerts:
        assert a.rule == "speeding" and a.state == alert_pb2.ALERT_STATE_OPEN, a
        by_severity = opened.setdefault(a.vehicle_id, {})
        assert a.severity not in by_severity, f"one episode per tier: {a}"
        by_severity[a.severity] = a.values["speed_kmh"]
    assert opened == {c.vehicle: c.opens for c in CASES}
