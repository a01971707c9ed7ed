"""The gear a combustion vehicle is expected in at a speed.

One table for the whole system: enrichment stamps ``expected_gear`` on every event with it, the
gear-mismatch rule compares against that stamp, and the load generator's vehicles drive by it
(so that only the injected scenarios mismatch).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

# A six-speed gearbox: the upper bound (km/h, exclusive) of gears 0..5, 0 meaning stationary;
# 6th at 80 km/h and above. Electric vehicles have a single ratio: the caller says "not
# applicable" with 0.
GEAR_UPPER_KMH: tuple[float, ...] = (1.0, 15.0, 30.0, 45.0, 60.0, 80.0)
_GEAR_UPPER = np.array(GEAR_UPPER_KMH)


def expected_gear(speed_kmh: float) -> int:
    """The gear a combustion vehicle is expected in at this speed: 0 below 1 km/h, then 1-6."""
    for gear, upper in enumerate(GEAR_UPPER_KMH):
        if speed_kmh < upper:
            return gear
    return len(GEAR_UPPER_KMH)


def expected_gears(speed_kmh: npt.ArrayLike) -> npt.NDArray[np.intp]:
    """:func:`expected_gear` of every speed of an array."""
    return np.searchsorted(_GEAR_UPPER, speed_kmh, side="right")
