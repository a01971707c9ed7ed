"""The per-driver limit and the per-rule cooldown, judged by the alerts' own times."""

from __future__ import annotations

import pytest

from fleetpipe.notification.ratelimit import DriverRateLimiter
from fleetpipe.notification.routing import RateLimitPolicy

pytestmark = pytest.mark.unit

S = 1_000_000
POLICY = RateLimitPolicy(max_per_window=3, window_s=600, cooldown_s=300, critical_bypass=True)


def _limiter(history: list[tuple[str, int]]) -> DriverRateLimiter:
    limiter = DriverRateLimiter(POLICY)
    for rule, t in history:
        limiter.record("driver:d", rule, t * S)
    return limiter


@pytest.mark.parametrize(
    ("history", "rule", "at_s", "critical", "expected"),
    [
        pytest.param([], "speeding", 0, False, "", id="first-goes"),
        pytest.param(
            [("speeding", 0)],
            "speeding",
            100,
            False,
            "cooldown: speeding notified 100s earlier",
            id="same-rule-in-cooldown",
        ),
        pytest.param([("speeding", 0)], "speeding", 300, False, "", id="cooldown-over"),
        pytest.param([("speeding", 0)], "low_fuel", 100, False, "", id="other-rule-goes"),
        pytest.param(
            [("a", 0), ("b", 10), ("c", 20)],
            "d",
            30,
            False,
            "rate limit: 3 alerts in 600s",
            id="window-full",
        ),
        pytest.param([("a", 0), ("b", 10), ("c", 20)], "d", 601, False, "", id="window-slid"),
        pytest.param(
            [("a", 0), ("b", 10), ("c", 20)], "crash", 30, True, "", id="critical-bypasses"
        ),
        pytest.param([("crash", 0)], "crash", 10, True, "", id="critical-bypasses-cooldown"),
        pytest.param(
            [("a", 500), ("b", 510), ("c", 520)],
            "d",
            30,
            False,
            "",
            id="later-alerts-of-other-vehicles-do-not-count",
        ),
    ],
)
def test_decide(
    history: list[tuple[str, int]], rule: str, at_s: int, critical: bool, expected: str
) -> None:
    assert _limiter(history).decide("driver:d", rule, at_s * S, critical=critical) == expected


def test_drivers_are_limited_separately() -> None:
    limiter = _limiter([("a", 0), ("b", 1), ("c", 2)])
    assert limiter.decide("driver:other", "a", 3 * S, critical=False) == ""


def test_prune_forgets_only_what_cannot_matter() -> None:
    limiter = _limiter([("a", 0), ("b", 500)])
    limiter.prune(700 * S)
    assert limiter.decide("driver:d", "a", 700 * S, critical=False) == ""
    assert limiter.decide("driver:d", "b", 700 * S, critical=False).startswith("cooldown")
