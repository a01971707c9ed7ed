"""Per-driver rate limit and per-rule cooldown. Pure: times are the alerts' own (µs).

Judging by the alert's time rather than the clock makes a replay decide the same way as the
first pass; the ledger makes it irrelevant anyway, since a decision once recorded is never taken
again. The limiter is rebuilt from the ledger when partitions are assigned.
"""

from __future__ import annotations

from collections import defaultdict

from fleetpipe.notification.routing import RateLimitPolicy

_US = 1_000_000


class DriverRateLimiter:
    def __init__(self, policy: RateLimitPolicy) -> None:
        self.policy = policy
        self._sent: defaultdict[str, list[int]] = defaultdict(list)
        self._last_rule: dict[tuple[str, str], int] = {}

    def decide(self, driver_key: str, rule: str, at_us: int, *, critical: bool) -> str:
        """ "" when the alert may be notified, else why it is held back."""
        p = self.policy
        if critical and p.critical_bypass:
            return ""
        last = self._last_rule.get((driver_key, rule))
        if last is not None and 0 <= at_us - last < p.cooldown_s * _US:
            return f"cooldown: {rule} notified {(at_us - last) / _US:.0f}s earlier"
        start = at_us - int(p.window_s * _US)
        recent = sum(1 for t in self._sent.get(driver_key, ()) if start < t <= at_us)
        if recent >= p.max_per_window:
            return f"rate limit: {recent} alerts in {p.window_s:.0f}s"
        return ""

    def record(self, driver_key: str, rule: str, at_us: int) -> None:
        self._sent[driver_key].append(at_us)
        key = (driver_key, rule)
        self._last_rule[key] = max(at_us, self._last_rule.get(key, at_us))

    def prune(self, now_us: int) -> None:
        """Forget what can no longer hold anything back, so memory stays bounded."""
        horizon = now_us - int(max(self.policy.window_s, self.policy.cooldown_s) * _US)
        for key in list(self._sent):
            kept = [t for t in self._sent[key] if t > horizon]
            if kept:
                self._sent[key] = kept
            else:
                del self._sent[key]
        for rule_key in [k for k, t in self._last_rule.items() if t <= horizon]:
            del self._last_rule[rule_key]

    def horizon_s(self) -> float:
        return max(self.policy.window_s, self.policy.cooldown_s)
