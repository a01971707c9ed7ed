"""The expected gear by speed: one table for enrichment's stamp and the simulated vehicles."""

from __future__ import annotations

import numpy as np
import pytest

from fleetpipe.core.gearbox import expected_gear, expected_gears

pytestmark = pytest.mark.unit

GEARS = [
    pytest.param(0.0, 0, id="stationary"),
    pytest.param(0.9, 0, id="creeping"),
    pytest.param(0.99, 0, id="still-creeping"),
    pytest.param(1.0, 1, id="moving-off"),
    pytest.param(14.99, 1, id="first-top"),
    pytest.param(15.0, 2, id="second"),
    pytest.param(29.9, 2, id="second-top"),
    pytest.param(30.0, 3, id="third"),
    pytest.param(44.9, 3, id="third-top"),
    pytest.param(45.0, 4, id="fourth"),
    pytest.param(79.9, 5, id="fifth"),
    pytest.param(80.0, 6, id="sixth"),
    pytest.param(120.0, 6, id="sixth-fast"),
    pytest.param(130.0, 6, id="sixth-on-the-motorway"),
]


@pytest.mark.parametrize(("speed", "gear"), GEARS)
def test_expected_gear_follows_speed(speed: float, gear: int) -> None:
    assert expected_gear(speed) == gear


def test_the_vectorised_table_agrees_with_the_scalar_one() -> None:
    speeds = np.array([p.values[0] for p in GEARS] + [float(s) / 4 for s in range(0, 800)])
    assert expected_gears(speeds).tolist() == [expected_gear(float(s)) for s in speeds]
