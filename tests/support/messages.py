"""Reading the records a test consumed: confluent-kafka types every part of one as optional.

A record read back from a topic always has a value, and a header that the test looks for is
either there or the test fails; these accessors say so once, with the record in the message.
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

from google.protobuf.message import Message as Proto

P = TypeVar("P", bound=Proto)


class Message(Protocol):
    """A consumed record, or one event of a pack (fleetpipe.core.packs.Event)."""

    def value(self) -> bytes | None: ...

    def key(self) -> bytes | None: ...

    def topic(self) -> str | None: ...

    def offset(self) -> int | None: ...

    def headers(self) -> Any: ...


def value_of(message: Message) -> bytes:
    value = message.value()
    assert value is not None, f"a record without a value: {message.topic()}@{message.offset()}"
    return value


def key_of(message: Message) -> bytes:
    key = message.key()
    assert key is not None, f"a record without a key: {message.topic()}@{message.offset()}"
    return key


def decoded(message: Message, kind: type[P]) -> P:
    """The record's value parsed as ``kind`` (a generated protobuf class)."""
    return kind.FromString(value_of(message))


def headers_of(message: Message) -> dict[str, bytes]:
    """The record's headers by name; a header without a value reads as ``b""``."""
    raw = message.headers() or []
    pairs = raw.items() if isinstance(raw, dict) else raw
    return {
        name: value.encode() if isinstance(value, str) else (value or b"") for name, value in pairs
    }
