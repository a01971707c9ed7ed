"""The KPI stage's changelog on Kafka: read whole on assignment. Writes go through the Output.

Detection's shape: the compacted topic is read to its end (committed records only: what a
crashed predecessor left in an open transaction never counts), and only what belongs to the
assigned partitions is kept. An unreadable record costs its vehicle (or partition) its state,
not the service; it is logged and counted.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Protocol

from google.protobuf.message import DecodeError

from fleetpipe.core.readers import read_latest
from fleetpipe.core.settings import KafkaSettings
from fleetpipe.pb.v1 import kpi_pb2

log = logging.getLogger(__name__)


@dataclass
class Restored:
    vehicles: list[kpi_pb2.KpiVehicle] = field(default_factory=list)
    partitions: list[kpi_pb2.KpiPartition] = field(default_factory=list)


class StateSource(Protocol):
    def load(self, partitions: Collection[int]) -> Restored:
        """The newest committed state of the vehicles and progress of ``partitions``."""


class KpiChangelog:
    def __init__(
        self, kafka: KafkaSettings, *, topic: str, client_id: str, timeout_s: float = 300.0
    ) -> None:
        self.kafka = kafka
        self.topic = topic
        self.client_id = client_id
        self.timeout_s = timeout_s
        self.corrupt = 0

    def load(self, partitions: Collection[int]) -> Restored:
        restored = Restored()
        if not partitions:
            return restored
        table = read_latest(
            self.kafka, self.topic, client_id=self.client_id, timeout_s=self.timeout_s
        )
        for key, found in table.items():
            try:
                state = kpi_pb2.KpiState.FromString(found.value)
            except DecodeError as exc:
                self.corrupt += 1
                log.error(
                    "KPI state %r in %s[%d]@%d is unreadable, starting it afresh: %s",
                    key,
                    self.topic,
                    found.partition,
                    found.offset,
                    exc,
                )
                continue
            kind = state.WhichOneof("state")
            if kind == "vehicle" and state.vehicle.partition in partitions:
                restored.vehicles.append(state.vehicle)
            elif kind == "partition" and state.partition.partition in partitions:
                restored.partitions.append(state.partition)
        return restored
