"""Builders of the records and messages that several test files need.

Message contents come from :mod:`fleetpipe_loadtest.records` and :mod:`fleetpipe_loadtest.synthetic`
(shared with the benchmarks); what is here wraps them the way the tests hand them to code.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from google.protobuf.message import Message as Proto

from fleetpipe.core.kafka import Message
from fleetpipe.core.metrics import Metrics
from fleetpipe.core.records import Output, OutputProducer, Record

P = TypeVar("P", bound=Proto)


def consumed(
    value: P, *, topic: str = "in", partition: int = 0, offset: int = 0, key: bytes | None = None
) -> Record[P]:
    """``value`` as a handler receives it: decoded, beside the record it was read from."""
    message = Message(
        topic=topic, partition=partition, offset=offset, key=key, value=value.SerializeToString()
    )
    return Record(message, value)


def output(producer: OutputProducer, *, service: str = "test") -> Output:
    """An ``Output`` over ``producer`` (a fake), outside any transaction, tracing off."""
    return Output(producer, service=service, deadletter_topic="dl", metrics=Metrics(service))


def changed(message: P, changes: Mapping[str, object]) -> P:
    """A copy of ``message`` with ``changes`` made: ``{"location__lat": 91.0}`` sets a nested
    field, a value of ``None`` clears the field (``{"location": None}``)."""
    out = type(message)()
    out.CopyFrom(message)
    for path, value in changes.items():
        target: Proto = out
        *parents, name = path.split("__")
        for parent in parents:
            target = getattr(target, parent)
        if value is None:
            target.ClearField(name)
        else:
            setattr(target, name, value)
    return out
