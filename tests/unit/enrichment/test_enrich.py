from __future__ import annotations

import random
from pathlib import Path

import geohash
import pytest

from fleetpipe.core.errors import ConfigError
from fleetpipe.enrichment.enrich import EnrichedBatch, Enricher, SpeedLimits
from fleetpipe.pb.v1 import enriched_pb2, telemetry_pb2
from fleetpipe.registry import Vehicle, VehicleRegistry

pytestmark = pytest.mark.unit

VAN = Vehicle("v-1", "fleet-a", "van", "Transit", "d-1", "Ann Driver", speed_profile="delivery")
TRUCK = Vehicle("v-2", "fleet-a", "truck", "Actros", "d-2", speed_profile="highway")
EV = Vehicle("v-3", "fleet-b", "ev", "ID.3", "d-3", electric=True)
REGISTRY = VehicleRegistry([VAN, TRUCK, EV])


def _telemetry(
    vid: str = "v-1",
    lat: float = 52.37,
    lon: float = 4.89,
    speed: float = 42.0,
    *,
    fleet: str | None = None,
) -> telemetry_pb2.Telemetry:
    """An event of ``vid``, from the fleet REGISTRY holds it in unless ``fleet`` is given."""
    registered = REGISTRY.get(vid)
    if fleet is None:
        fleet = registered.fleet_id if registered is not None else "fleet-z"
    return telemetry_pb2.Telemetry(
        vehicle_id=vid,
        fleet_id=fleet,
        seq=7,
        event_time_us=1_700_000_000_000_000,
        location=telemetry_pb2.Location(lat=lat, lon=lon, heading_deg=90.0),
        motion=telemetry_pb2.Motion(speed_kmh=speed, accel_x_ms2=-0.5),
        engine=telemetry_pb2.Engine(rpm=2100, gear=3, fuel_pct=55.0, ignition=True),
        dtc_codes=["P0217"],
    )


def _enrich(
    enricher: Enricher, *events: telemetry_pb2.Telemetry, now_us: int = 5
) -> tuple[EnrichedBatch, list[enriched_pb2.EnrichedTelemetry]]:
    batch = enricher.enrich(((t, t.SerializeToString()) for t in events), now_us=now_us)
    return batch, [enriched_pb2.EnrichedTelemetry.FromString(v) for _, v in batch.values]


def test_spliced_output_equals_the_message_built_field_by_field() -> None:
    t = _telemetry(speed=42.5)
    batch, [enriched] = _enrich(Enricher(REGISTRY, SpeedLimits()), t, now_us=123)
    cell = geohash.encode(52.37, 4.89, 6)
    expected = enriched_pb2.EnrichedTelemetry(
        telemetry=t,
        vehicle=enriched_pb2.VehicleInfo(
            fleet_id="fleet-a",
            vehicle_type="van",
            model="Transit",
            driver_id="d-1",
            driver_name="Ann Driver",
            speed_profile="delivery",
        ),
        geohash6=cell,
        speed_limit_kmh=80.0,
        expected_gear=3,
        known=True,
        enriched_time_us=123,
    )
    assert enriched == expected
    assert batch.values[0][0] == "v-1"
    assert batch.unknown == 0


def test_unknown_vehicles_pass_with_known_false_and_are_counted() -> None:
    batch, [enriched, other] = _enrich(
        Enricher(REGISTRY, SpeedLimits()),
        _telemetry("stranger", fleet="fleet-from-device"),
        _telemetry("v-1"),
    )
    assert not enriched.known
    assert enriched.vehicle.fleet_id == "fleet-from-device"
    assert enriched.telemetry == _telemetry("stranger", fleet="fleet-from-device")
    assert enriched.speed_limit_kmh == 80.0
    assert other.known
    assert batch.unknown == 1


def test_electric_vehicles_have_no_expected_gear() -> None:
    _, [enriched] = _enrich(Enricher(REGISTRY, SpeedLimits()), _telemetry("v-3", speed=90))
    assert enriched.expected_gear == 0
    assert enriched.vehicle.electric


LIMITS = SpeedLimits(
    default_kmh=80,
    vehicle_types={"truck": 70},
    speed_profiles={"highway": 110, "delivery": 60},
    zones={"u17": 100, "u173zm": 30},
)


@pytest.mark.parametrize(
    ("vehicle", "lat", "lon", "limit"),
    [
        pytest.param("v-1", 10.0, 10.0, 60, id="profile-outside-zones"),
        pytest.param("v-2", 10.0, 10.0, 70, id="type-caps-profile"),
        pytest.param("v-3", 10.0, 10.0, 80, id="default-when-unlisted"),
        pytest.param("v-3", 52.37, 4.89, 30, id="longest-zone-prefix-wins"),
        pytest.param("v-3", 52.25, 4.60, 80, id="zone-above-vehicle-limit"),
        pytest.param("v-1", 52.37, 4.89, 30, id="zone-below-vehicle-limit"),
        pytest.param("nobody", 10.0, 10.0, 80, id="unknown-gets-default"),
    ],
)
def test_speed_limit_by_vehicle_and_zone(
    vehicle: str, lat: float, lon: float, limit: float
) -> None:
    _, [enriched] = _enrich(Enricher(REGISTRY, LIMITS), _telemetry(vehicle, lat, lon))
    assert enriched.speed_limit_kmh == pytest.approx(limit)


def test_geohash_cache_agrees_with_direct_encoding_on_a_random_walk() -> None:
    rng = random.Random(7)
    enricher = Enricher(REGISTRY, SpeedLimits())
    lat, lon = 52.37, 4.89
    events = []
    for _ in range(3000):
        lat += rng.uniform(-0.003, 0.003)
        lon += rng.uniform(-0.003, 0.003)
        events.append(_telemetry("v-1", lat, lon))
    # Exactly on cell edges too: a cache that got the half-open boundaries wrong fails here.
    box = geohash.bbox(geohash.encode(52.37, 4.89, 6))
    for la, lo in [(box["s"], box["w"]), (box["n"], box["e"]), (box["n"], box["w"])]:
        events.append(_telemetry("v-1", la, lo))
    _, out = _enrich(enricher, *events)
    assert [e.geohash6 for e in out] == [
        geohash.encode(t.location.lat, t.location.lon, 6) for t in events
    ]


@pytest.mark.parametrize(
    ("lat", "lon", "field"),
    [
        pytest.param(91.0, 4.0, "location.lat 91.0", id="lat"),
        pytest.param(52.0, -181.0, "location.lon -181.0", id="lon"),
        pytest.param(float("nan"), 4.0, "location.lat nan", id="nan"),
    ],
)
def test_unplaceable_events_are_reported_and_the_rest_go_through(
    lat: float, lon: float, field: str
) -> None:
    batch, out = _enrich(
        Enricher(REGISTRY, SpeedLimits()), _telemetry(), _telemetry(lat=lat, lon=lon), _telemetry()
    )
    assert len(out) == 2
    assert [index for index, _ in batch.invalid] == [1]
    assert field in batch.invalid[0][1]


def test_a_new_registry_replaces_cached_vehicle_details() -> None:
    enricher = Enricher(REGISTRY, SpeedLimits())
    _, [before] = _enrich(enricher, _telemetry("v-9"))
    enricher.use_registry(VehicleRegistry([Vehicle("v-9", "fleet-z", "bus", driver_id="d-9")]))
    _, [after] = _enrich(enricher, _telemetry("v-9"))
    assert not before.known
    assert after.known and after.vehicle.driver_id == "d-9"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("default_kmh: -5\n", "default_kmh", id="negative-default"),
        pytest.param("zones: {u17a: 30}\n", "'u17a' is not a geohash prefix", id="bad-prefix"),
        pytest.param("zones: {u17: 900}\n", "900.0 km/h is not a speed limit", id="absurd"),
        pytest.param("speed_limit: 3\n", "speed_limit: Extra inputs", id="unknown-key"),
    ],
)
def test_bad_speed_limit_files_name_the_field(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "limits.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        SpeedLimits.load(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_an_event_for_a_vehicle_of_another_fleet_is_not_enriched() -> None:
    batch, [mine] = _enrich(
        Enricher(REGISTRY, SpeedLimits()),
        _telemetry("v-3", fleet="fleet-a"),  # v-3 is fleet-b's
        _telemetry("v-1"),
    )
    assert batch.invalid == [(0, "vehicle_id 'v-3' is not a vehicle of the event's fleet")]
    assert mine.vehicle.fleet_id == "fleet-a"
    assert [key for key, _ in batch.values] == ["v-1"]
