"""The state changelog on Kafka: read whole on assignment. Writes go through the loop's Output."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from google.protobuf.message import DecodeError

from fleetpipe.core.kafka import Admin, build_admin
from fleetpipe.core.readers import read_latest
from fleetpipe.core.settings import KafkaSettings
from fleetpipe.detection.state import VehicleState

log = logging.getLogger(__name__)

Keep = Callable[[str, VehicleState], bool]


@dataclass(frozen=True)
class Unreadable:
    """A vehicle's newest changelog record that does not parse, and where it was read."""

    vehicle_id: str
    key: bytes
    value: bytes
    partition: int
    offset: int
    error: str


class StateSource(Protocol):
    def partition_count(self) -> int:
        """Partitions of the input topic now."""

    def load(self, keep: Keep) -> dict[str, VehicleState]:
        """Every vehicle's newest committed state for which ``keep`` says yes."""

    def take_unreadable(self) -> list[Unreadable]:
        """The unparseable records the loads since the last call met, each once."""


class Changelog:
    def __init__(
        self,
        kafka: KafkaSettings,
        *,
        topic: str,
        input_topic: str,
        client_id: str,
        timeout_s: float = 300.0,
    ) -> None:
        self.kafka = kafka
        self.topic = topic
        self.input_topic = input_topic
        self.client_id = client_id
        self.timeout_s = timeout_s
        self._admin: Admin | None = None
        self.corrupt = 0
        self._unreadable: dict[tuple[int, int], Unreadable] = {}

    def partition_count(self) -> int:
        if self._admin is None:
            self._admin = build_admin(self.kafka, timeout_s=self.timeout_s)
        count = self._admin.partitions([self.input_topic]).get(self.input_topic, 0)
        if count < 1:
            raise LookupError(f"input topic {self.input_topic} has no partitions")
        return count

    def load(self, keep: Keep) -> dict[str, VehicleState]:
        table = read_latest(
            self.kafka,
            self.topic,
            client_id=self.client_id,
            timeout_s=self.timeout_s,
            newer=later_state,
        )
        states: dict[str, VehicleState] = {}
        for key, found in table.items():
            vid = key.decode(errors="replace")
            try:
                st = VehicleState.from_bytes(found.value)
            except DecodeError as exc:
                # One unreadable record costs that vehicle its history, not the service; the
                # handler dead-letters it (whoever owns the vehicle) with its coordinates.
                self.corrupt += 1
                log.error(
                    "state of %s in %s[%d]@%d is unreadable, starting it afresh: %s",
                    vid,
                    self.topic,
                    found.partition,
                    found.offset,
                    exc,
                )
                self._unreadable[(found.partition, found.offset)] = Unreadable(
                    vid, key, found.value, found.partition, found.offset, str(exc)
                )
                continue
            if keep(vid, st):
                states[vid] = st
        return states

    def take_unreadable(self) -> list[Unreadable]:
        taken = list(self._unreadable.values())
        self._unreadable.clear()
        return taken


def later_state(candidate: bytes, held: bytes) -> bool:
    """Whether ``candidate`` is a later state of the vehicle than ``held``, when the changelog
    holds both in different partitions (it grew, and the vehicle's key moved). A vehicle's state
    is written after its events in seq order, so the higher last seq is the later one; an
    unreadable candidate never displaces a readable state."""
    try:
        new = VehicleState.from_bytes(candidate)
    except DecodeError:
        return False
    try:
        old = VehicleState.from_bytes(held)
    except DecodeError:
        return True
    return (new.last_seq, new.last_seen_us) >= (old.last_seq, old.last_seen_us)
