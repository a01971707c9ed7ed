"""Which vehicles' state this replica holds, and which of them are in transition. No I/O.

Ownership after partitions grow (DESIGN §3): the detector knows each vehicle's *home*
partition, where the pipeline's key groups (:mod:`fleetpipe.core.keygroups`) now place it:
growing the partitions moves whole key groups, contiguous ranges of them, to new partitions.
A vehicle whose records still arrive on its old partition (producers that have not refreshed
their metadata) is *in transition*.
When its records first arrive on a different partition than its held state says, the copy
here may be older than what the other replica wrote since; :meth:`Ownership.stale_arrivals`
names such vehicles so the handler can re-read them from the changelog first. Offline checks
skip vehicles in transition: their silence here proves nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from fleetpipe.core.keygroups import KeyGroups
from fleetpipe.detection.state import VehicleState


class Ownership:
    """The held vehicle states of the assigned partitions of the input topic."""

    def __init__(self, groups: KeyGroups) -> None:
        self.groups = groups
        self.states: dict[str, VehicleState] = {}
        self.partitions = 0  # of the input topic; 0 while unknown
        self.assigned: frozenset[int] = frozenset()
        self._transition: set[str] = set()

    def home_of(self, vehicle_id: str) -> int:
        return self.groups.partition(vehicle_id, self.partitions) if self.partitions else -1

    def assign(
        self, partitions: int, assigned: Iterable[int], states: dict[str, VehicleState]
    ) -> None:
        """Take over ``states`` (restored from the changelog) for the assigned partitions."""
        self.partitions = partitions
        self.assigned = frozenset(assigned)
        self.states = states
        self._transition = set()
        for vid, st in states.items():
            st.home_partition = self.home_of(vid)
            st.refreshed = False
            if st.input_partition != st.home_partition:
                self._transition.add(vid)

    def revoke(self, partitions: Iterable[int]) -> None:
        """Forget the vehicles of partitions leaving this process."""
        gone = set(partitions)
        self.assigned = self.assigned - gone
        if not self.assigned:
            self.states = {}
            self._transition = set()
            return
        assigned = self.assigned
        for vid in [
            vid
            for vid, st in self.states.items()
            if not self.keeps(st, home=st.home_partition, assigned=assigned)
        ]:
            del self.states[vid]
            self._transition.discard(vid)

    @staticmethod
    def keeps(state: VehicleState, *, home: int, assigned: frozenset[int] | set[int]) -> bool:
        """Whether a replica owning ``assigned`` must hold this vehicle's state."""
        return home in assigned or state.input_partition in assigned

    @property
    def in_transition(self) -> int:
        return len(self._transition)

    def arrived(self, st: VehicleState, partition: int) -> None:
        """``st``'s vehicle sent an event on ``partition``, not the one it last came from."""
        st.input_partition = partition
        if partition == st.home_partition:
            self._transition.discard(st.vehicle_id)
        else:
            self._transition.add(st.vehicle_id)

    def stale_arrivals(self, vehicle_ids: Sequence[str], partitions: Sequence[int]) -> set[str]:
        """Vehicles whose events arrive on another partition than their held state says."""
        if not self._transition:
            return set()
        states = self.states
        stale = set()
        for vid, partition in zip(vehicle_ids, partitions, strict=True):
            st = states.get(vid)
            if st is not None and not st.refreshed and st.input_partition != partition:
                stale.add(vid)
        return stale

    def transition_vehicles(self) -> set[str]:
        """Vehicles in transition whose new home is here: worth re-reading with the stale ones."""
        return {
            vid
            for vid in self._transition
            if (st := self.states.get(vid)) is not None
            and st.home_partition in self.assigned
            and not st.refreshed
        }

    def refresh(self, wanted: Iterable[str], loaded: dict[str, VehicleState]) -> None:
        """Replace held copies with the changelog's newer ones."""
        for vid in wanted:
            st = loaded.get(vid) or self.states.get(vid)
            if st is None:
                continue
            st.home_partition = self.home_of(vid)
            st.refreshed = True
            self.states[vid] = st
            if st.input_partition != st.home_partition:
                self._transition.add(vid)
