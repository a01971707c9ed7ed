"""A handle on an ingest server process that a test started, with two fleets' tokens."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import grpc

from fleetpipe.core.settings import Topics
from fleetpipe.pb.v1 import ingest_pb2_grpc
from fleetpipe_dev.testing import ServiceProcess

TOKEN_A = "token-fleet-a-0123456789abcdef"
TOKEN_B = "token-fleet-b-0123456789abcdef"


@dataclass
class Ingest:
    process: ServiceProcess
    address: str
    topics: Topics
    token_a: str = TOKEN_A  # fleet-a
    token_b: str = TOKEN_B  # fleet-b

    def channel(self) -> grpc.Channel:
        return grpc.insecure_channel(self.address)

    def stub(self) -> ingest_pb2_grpc.TelemetryIngestStub:
        return ingest_pb2_grpc.TelemetryIngestStub(self.channel())

    def auth(self, token: str = TOKEN_A) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {token}"),)


class StartIngest(Protocol):
    """The ``start_ingest`` fixture: an ingest server on ``topics``; ``extra`` adds settings."""

    def __call__(self, topics: Topics, *, wait_ready: bool = True, **extra: str) -> Ingest: ...
