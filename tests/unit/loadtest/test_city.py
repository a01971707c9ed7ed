"""The samples ship the simulated city: the zones every injected scenario needs to alert."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import shapely
import yaml

from fleetpipe.core.zones import parse_zones, shape
from fleetpipe_loadtest.city import city_zones
from fleetpipe_loadtest.fleet import Fleet
from fleetpipe_loadtest.geo import destination

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]


def _sample_zones() -> list[pytest.ParameterSet]:
    found = []
    for sample in sorted((ROOT / "k8s" / "samples").glob("fleetpipeline-*.yaml")):
        found.append(pytest.param(yaml.safe_load(sample.read_text())["spec"], id=sample.name))
    values = yaml.safe_load((ROOT / "helm" / "fleetpipe" / "values.yaml").read_text())
    found.append(pytest.param(values["pipeline"]["spec"], id="chart-values"))
    return found


@pytest.mark.parametrize("spec", _sample_zones())
def test_the_samples_ship_the_simulated_city(spec: dict[str, Any]) -> None:
    assert parse_zones(spec["zones"]) == city_zones()


def test_the_city_fits_the_simulator() -> None:
    fleet = Fleet(50, seed=3)
    area, city = city_zones()
    # The keep-in fence is the simulator's own operating area (to the vertices' rounding).
    simulated = shapely.Polygon(fleet.geofence())
    assert shape(area.polygon).symmetric_difference(simulated).area < 1e-4 * simulated.area
    # The speed zone holds all normal driving (within 9 km of the centre), above its speeds.
    ring = [destination(*fleet.center, bearing, 9_000.0) for bearing in range(0, 360, 5)]
    inside = shapely.contains_xy(shape(city.polygon), [p[1] for p in ring], [p[0] for p in ring])
    assert inside.all()
    assert city.speed_limit_kmh is not None and city.speed_limit_kmh > 56
