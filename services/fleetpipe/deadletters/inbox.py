"""Reading the dead-letter topic and sending chosen records back where they failed.

A replay produces the failed record's own key and payload to its source topic, with a
``fp-replayed-from`` header naming the dead letter (``topic/partition/offset``) and the failed
record's headers that say how its payload is framed: a whole pack goes back as a pack
(``fp-pack``), to the partition it came from (a pack has no key to place it by, and its events
are that partition's vehicles). Replaying is
safe to repeat: every consumer of a source topic is idempotent on the event's identity (the
storage writer's primary keys, the lake's silver on vehicle and seq), so an event replayed
twice, or replayed after it was stored another way, is stored once.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from google.protobuf.json_format import MessageToDict
from google.protobuf.message import DecodeError, Message

from fleetpipe.core.errors import FleetPipeError
from fleetpipe.core.kafka import Headers, build_producer
from fleetpipe.core.packs import is_pack, scan
from fleetpipe.core.readers import OFFSET_BEGINNING, build_reader, is_partition_eof
from fleetpipe.core.records import replayed_format_headers
from fleetpipe.core.settings import KafkaSettings, Topics
from fleetpipe.core.topics import CONTRACTS
from fleetpipe.pb.v1 import deadletter_pb2

REPLAYED_FROM = "fp-replayed-from"


class DeadLetterError(FleetPipeError):
    """A dead letter cannot be found, read or replayed."""


@dataclass(frozen=True)
class DeadLetter:
    partition: int
    offset: int
    timestamp_ms: int
    headers: Headers
    letter: deadletter_pb2.DeadLetter

    @property
    def at(self) -> str:
        return f"{self.partition}:{self.offset}"

    @property
    def format_headers(self) -> Headers:
        """The failed record's headers that frame its payload (``fp-pack`` for a pack)."""
        return replayed_format_headers(self.headers)


def parse_at(text: str) -> tuple[int, int]:
    """``PARTITION:OFFSET`` → the pair; a clear error otherwise."""
    head, sep, tail = text.partition(":")
    if not sep or not head.isdigit() or not tail.isdigit():
        raise DeadLetterError(f"{text!r}: a dead letter is named PARTITION:OFFSET, e.g. 0:42")
    return int(head), int(tail)


def read(
    kafka: KafkaSettings,
    topic: str,
    *,
    at: Iterable[tuple[int, int]] | None = None,
    timeout_s: float = 60.0,
) -> list[DeadLetter]:
    """Every dead letter in ``topic`` (to the partitions' current ends), or only those ``at``
    the given positions, in partition and offset order."""
    wanted = None if at is None else set(at)
    reader = build_reader(
        kafka, client_id="fleetpipe-deadletters", read_committed=True, partition_eof=True
    )
    found: list[DeadLetter] = []
    try:
        partitions = reader.partitions(topic)
        ends = {p: reader.watermarks(topic, p)[1] for p in partitions}
        starts = {p: OFFSET_BEGINNING for p, end in ends.items() if end > 0}
        if wanted is not None:
            starts = {p: o for p, o in starts.items() if any(w[0] == p for w in wanted)}
        if not starts:
            return found
        reader.assign(topic, starts)
        pending = set(starts)
        deadline = time.monotonic() + timeout_s
        while pending and time.monotonic() < deadline:
            for msg in reader.consume(1000, 0.5):
                partition = msg.partition() or 0
                if is_partition_eof(msg):
                    pending.discard(partition)
                    continue
                if msg.error() is not None:
                    raise DeadLetterError(f"cannot read {topic}: {msg.error()}")
                offset = msg.offset() or 0
                if offset + 1 >= ends[partition]:
                    pending.discard(partition)
                if wanted is not None and (partition, offset) not in wanted:
                    continue
                found.append(_decode(msg.value() or b"", msg, partition, offset, topic))
        if pending:
            raise DeadLetterError(f"{topic}: partitions {sorted(pending)} not read to their end")
    finally:
        reader.close()
    if wanted is not None:
        missing = wanted - {(d.partition, d.offset) for d in found}
        if missing:
            names = ", ".join(f"{p}:{o}" for p, o in sorted(missing))
            raise DeadLetterError(f"no dead letter at {names} in {topic}")
    return sorted(found, key=lambda d: (d.partition, d.offset))


def _decode(value: bytes, msg: object, partition: int, offset: int, topic: str) -> DeadLetter:
    try:
        letter = deadletter_pb2.DeadLetter.FromString(value)
    except DecodeError as exc:
        raise DeadLetterError(f"{topic} {partition}:{offset} is not a DeadLetter: {exc}") from exc
    raw = msg.headers() or []  # type: ignore[attr-defined]
    headers = list(raw.items()) if isinstance(raw, dict) else list(raw)
    timestamp = int(msg.timestamp()[1])  # type: ignore[attr-defined]
    return DeadLetter(partition, offset, timestamp, headers, letter)


def summary(letters: Iterable[DeadLetter]) -> list[tuple[str, str, str, int]]:
    """(reason, source topic, service, count), most frequent first."""
    counts = Counter(
        (d.letter.reason, d.letter.source_topic or "-", d.letter.service) for d in letters
    )
    return [(*key, n) for key, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def payload_type(topics: Topics, topic: str) -> type[Message] | None:
    """The protobuf message a pipeline topic carries; None for a topic the pipeline does not
    know."""
    names = topics.model_dump()
    for contract in CONTRACTS:
        if names.get(contract.field) == topic:
            return contract.message
    return None


def decoded_payload(topics: Topics, letter: deadletter_pb2.DeadLetter) -> dict[str, object] | None:
    """The failed record's payload as its source topic's message, or None when it does not
    parse as one (which may be why it failed)."""
    message_type = payload_type(topics, letter.source_topic)
    if message_type is None:
        return None
    try:
        return MessageToDict(message_type.FromString(letter.payload))
    except (DecodeError, ValueError):
        return None


@dataclass(frozen=True)
class Replay:
    letter: DeadLetter
    topic: str


def plan(topics: Topics, letters: Iterable[DeadLetter], *, to: str = "") -> list[Replay]:
    """Where each chosen dead letter goes; refuses the whole plan when one cannot be replayed
    (no source topic, or a payload that is not the topic's message): nothing half-done."""
    replays = []
    for d in letters:
        target = to or d.letter.source_topic
        if not target:
            raise DeadLetterError(
                f"dead letter {d.at} names no source topic (it failed at {d.letter.service!r}"
                " before any topic): give --to"
            )
        message_type = payload_type(topics, target)
        if message_type is None:
            raise DeadLetterError(f"dead letter {d.at}: {target} is not a pipeline topic")
        try:
            if is_pack(d.format_headers):
                data = d.letter.payload
                for start, end in scan(data).spans:
                    message_type.FromString(data[start:end])
            else:
                message_type.FromString(d.letter.payload)
        except (DecodeError, ValueError) as exc:
            what = "pack of " if is_pack(d.format_headers) else ""
            raise DeadLetterError(
                f"dead letter {d.at}: its payload is not a {what}{message_type.__name__}"
                f" ({exc}); it cannot be replayed to {target}"
            ) from exc
        replays.append(Replay(d, target))
    return replays


def replay(kafka: KafkaSettings, dead_letter_topic: str, replays: list[Replay]) -> int:
    """Produce every planned replay and wait until Kafka has each (acks=all)."""
    producer = build_producer(kafka, client_id="fleetpipe-deadletters-replay")
    try:
        for r in replays:
            letter = r.letter.letter
            origin = f"{dead_letter_topic}/{r.letter.partition}/{r.letter.offset}"
            framing = r.letter.format_headers
            # A pack back to its own partition, when it goes back to its own topic.
            back = is_pack(framing) and r.topic == letter.source_topic
            producer.produce(
                r.topic,
                letter.payload,
                letter.key or None,
                [(REPLAYED_FROM, origin.encode()), *framing],
                partition=letter.source_partition
                if back and letter.source_partition >= 0
                else None,
            )
        producer.flush()
        producer.raise_for_failures()
    finally:
        producer.close()
    return len(replays)
