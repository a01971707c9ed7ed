"""Deterministic randomness for the simulator, all from splitmix64.

Sensor noise is a counter-based hash of (seed, vehicle, tick) rather than a draw from a shared
stream, so a vehicle produces the same events whether it is simulated alone, in a shard or in the
whole fleet. The slow-path decisions of a vehicle (trip plans, scenarios) come from its own
:class:`VehicleRng`, seeded the same way.
"""

from __future__ import annotations

import math
from typing import Any, overload

import numpy as np

from fleetpipe_loadtest.arrays import F64, I64, U64

MASK64 = (1 << 64) - 1
# splitmix64's increment: 2**64 divided by the golden ratio, odd.
GOLDEN_GAMMA = 0x9E3779B97F4A7C15


@overload
def mix64(x: int) -> int: ...


@overload
def mix64(x: U64) -> U64: ...


def mix64(x: Any) -> Any:
    """splitmix64's finaliser, on a Python int or element-wise on a uint64 array.

    One set of steps serves both: the mask keeps a Python int to 64 bits and changes nothing on a
    uint64 array, whose arithmetic already wraps modulo 2**64.
    """
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


def splitmix64(x: int) -> int:
    """The splitmix64 output for state ``x``: a well-mixed 64-bit hash of an int."""
    return mix64((x + GOLDEN_GAMMA) & MASK64)


def fleet_key(seed: int) -> int:
    """The key every hash of a fleet with this seed derives from."""
    return splitmix64(seed ^ 0x5EED_F1EE7)


def vehicle_hashes(key: int, numbers: I64, channel: int) -> U64:
    """One 64-bit hash per vehicle number for ``channel``: static draws, or a per-tick base."""
    channel_key = np.uint64(splitmix64(key ^ (channel * 0xA24BAED4963EE407 & MASK64)))
    return mix64(numbers.astype(np.uint64) * np.uint64(GOLDEN_GAMMA) ^ channel_key)


def tick_hashes(base: U64, tick: int) -> U64:
    """The per-vehicle hashes of one tick, from :func:`vehicle_hashes` of the noise channel."""
    return mix64(base ^ np.uint64((tick * GOLDEN_GAMMA) & MASK64))


def uniform_channel(h: U64, k: int) -> F64:
    """The k-th of six 10-bit uniform draws packed in a 64-bit hash, in (0, 1)."""
    bits = (h >> np.uint64(10 * k)) & np.uint64(1023)
    return (bits.astype(np.float64) + 0.5) / 1024.0


class VehicleRng:
    """A tiny deterministic generator per vehicle (splitmix64), cheaper than random.Random."""

    __slots__ = ("state",)

    def __init__(self, seed: int) -> None:
        self.state = seed & MASK64

    @classmethod
    def for_vehicle(cls, key: int, number: int) -> VehicleRng:
        return cls(splitmix64(key ^ (number * 0xD1B54A32D192ED03 & MASK64)))

    def random(self) -> float:
        self.state = (self.state + GOLDEN_GAMMA) & MASK64
        return (mix64(self.state) >> 11) * (1.0 / (1 << 53))

    def uniform(self, lo: float, hi: float) -> float:
        return lo + (hi - lo) * self.random()

    def randint(self, lo: int, hi: int) -> int:
        """lo..hi inclusive."""
        return lo + int(self.random() * (hi - lo + 1))

    def expovariate(self, rate: float) -> float:
        return -math.log(1.0 - self.random()) / rate
