from __future__ import annotations

import os
from pathlib import Path

import pytest

from fleetpipe.registry import (
    RegistryError,
    RegistryWatcher,
    Vehicle,
    VehicleRegistry,
    write_csv,
)

pytestmark = pytest.mark.unit

HEADER = "vehicle_id,fleet_id,vehicle_type,model,driver_id,driver_phone,electric\n"


def _csv(tmp_path: Path, body: str, name: str = "vehicles.csv") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + body)
    return path


def test_csv_and_yaml_load_the_same_vehicle(tmp_path: Path) -> None:
    from_csv = VehicleRegistry.load(
        _csv(tmp_path, "v-1,fleet-a,van,Transit,d-1,+15551230001,true\n")
    )
    yml = tmp_path / "vehicles.yaml"
    yml.write_text(
        "vehicles:\n  - {vehicle_id: v-1, fleet_id: fleet-a, vehicle_type: van, model: Transit,"
        " driver_id: d-1, driver_phone: '+15551230001', electric: true}\n"
    )
    from_yaml = VehicleRegistry.load(yml)
    assert (
        from_csv.get("v-1")
        == from_yaml.get("v-1")
        == Vehicle("v-1", "fleet-a", "van", "Transit", "d-1", "", "+15551230001", "", "urban", True)
    )
    assert from_csv.get("nope") is None


@pytest.mark.parametrize(
    ("row", "message"),
    [
        pytest.param(",fleet-a,van,,,,\n", "vehicle_id '' is missing", id="no-vehicle-id"),
        pytest.param("v 1,fleet-a,van,,,,\n", "vehicle_id 'v 1'", id="malformed-id"),
        pytest.param("v-1,,van,,,,\n", "fleet_id is missing", id="no-fleet"),
        pytest.param("v-1,f,spaceship,,,,\n", "vehicle_type 'spaceship'", id="bad-type"),
        pytest.param("v-1,f,van,,,555-1234,\n", "driver_phone '555-1234'", id="bad-phone"),
        pytest.param("v-1,f,van,,,,\nv-1,f,van,,,,\n", "appears twice", id="duplicate"),
    ],
)
def test_bad_rows_are_refused_with_file_line_and_field(
    tmp_path: Path, row: str, message: str
) -> None:
    path = _csv(tmp_path, row)
    with pytest.raises(RegistryError) as info:
        VehicleRegistry.load(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_watcher_reloads_a_changed_file_and_keeps_the_old_one_when_broken(tmp_path: Path) -> None:
    path = tmp_path / "vehicles.csv"
    write_csv([Vehicle("v-1", "f")], path)
    watcher = RegistryWatcher(path, check_interval_s=0)
    assert watcher.maybe_reload() is False, "unchanged file: nothing to do"

    write_csv([Vehicle("v-1", "f"), Vehicle("v-2", "f")], path)
    assert watcher.maybe_reload() is True
    assert "v-2" in watcher.current

    path.write_text("not,a,registry\n")
    os.utime(path, ns=(1, 1))
    assert watcher.maybe_reload() is False
    assert len(watcher.current) == 2 and watcher.failed_reloads == 1


def test_watcher_follows_a_configmap_style_symlink_swap(tmp_path: Path) -> None:
    first, second = tmp_path / "..data1", tmp_path / "..data2"
    first.mkdir()
    second.mkdir()
    write_csv([Vehicle("v-1", "f")], first / "vehicles.csv")
    write_csv([Vehicle("v-9", "f")], second / "vehicles.csv")
    link = tmp_path / "vehicles.csv"
    link.symlink_to(first / "vehicles.csv")
    watcher = RegistryWatcher(link, check_interval_s=0)
    tmp_link = tmp_path / "tmp-link"
    tmp_link.symlink_to(second / "vehicles.csv")
    tmp_link.replace(link)
    assert watcher.maybe_reload() is True
    assert "v-9" in watcher.current and "v-1" not in watcher.current


def test_a_hundred_thousand_vehicles_round_trip_through_csv(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    write_csv(
        (Vehicle(f"veh-{i:06d}", f"fleet-{i % 5}", driver_id=f"d-{i}") for i in range(100_000)),
        path,
    )
    registry = VehicleRegistry.load(path)
    assert len(registry) == 100_000
    assert registry.get("veh-099999") == Vehicle("veh-099999", "fleet-4", driver_id="d-99999")


def test_the_last_service_is_read_and_a_bad_one_named(tmp_path: Path) -> None:
    path = tmp_path / "vehicles.csv"
    path.write_text("vehicle_id,fleet_id,last_service_km\nv-1,f,14000.5\nv-2,f,\n")
    registry = VehicleRegistry.load(path)
    serviced, unrecorded = registry.get("v-1"), registry.get("v-2")
    assert serviced is not None and serviced.last_service_km == 14000.5
    assert unrecorded is not None and unrecorded.last_service_km == 0.0
    path.write_text("vehicle_id,fleet_id,last_service_km\nv-1,f,soon\n")
    with pytest.raises(RegistryError, match="last_service_km 'soon'"):
        VehicleRegistry.load(path)


def test_colour_and_fuel_are_read_and_an_unknown_fuel_named(tmp_path: Path) -> None:
    path = tmp_path / "vehicles.csv"
    path.write_text(
        "vehicle_id,fleet_id,colour,fuel,electric\nv-1,f,red,Diesel,\nv-2,f,,,true\nv-3,f,,,\n"
    )
    registry = VehicleRegistry.load(path)
    diesel, electric, unnamed = registry.get("v-1"), registry.get("v-2"), registry.get("v-3")
    assert diesel is not None and (diesel.colour, diesel.fuel_kind) == ("red", "diesel")
    assert electric is not None and electric.fuel_kind == "electric"
    assert unnamed is not None and (unnamed.colour, unnamed.fuel_kind) == ("", "")
    path.write_text("vehicle_id,fleet_id,fuel\nv-1,f,steam\n")
    with pytest.raises(RegistryError, match="fuel 'steam'"):
        VehicleRegistry.load(path)
