"""What the operator keeps per pipeline between reconciles (lost on restart, by design)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from fleet_operator.sizing import Autoscaler, LagDecision
from fleet_operator.spec import Component


@dataclass
class Memory:
    """What the operator keeps per pipeline between reconciles (lost on restart, by design)."""

    autoscaler: Autoscaler = field(default_factory=Autoscaler)
    lag: dict[Component, int] = field(default_factory=dict)
    decisions: dict[Component, LagDecision] = field(default_factory=dict)
    # Each Deployment's metadata.generation right after our last apply.
    generations: dict[Component, int] = field(default_factory=dict)

    def edited_by_others(self, now: Mapping[Component, int]) -> set[Component]:
        """Deployments whose spec someone else changed since our last apply, and we put back.

        Reading a Deployment and then applying leaves a window in which a hand edit lands and
        is reverted unseen; the generation cannot hide it: their change and our revert are
        two steps past the generation our previous apply left.
        """
        edited = {
            c for c, g in now.items() if c in self.generations and g - self.generations[c] >= 2
        }
        self.generations.update(now)
        return edited
