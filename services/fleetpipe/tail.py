"""``fleetpipe tail TOPIC``: a pipeline topic's events as JSON lines, packs opened, like kcat.

Each line is one event: its record's coordinates (``partition``, ``offset``; in a pack also
``index``, the event's position in it, and ``packed: true``), the record's key and the event
as protobuf's JSON mapping, with the field names of the ``.proto`` files. A record that does not
decode is a line with ``error`` and its coordinates; tail goes on. Which message a topic holds
comes from the topic table (``fleetpipe.core.topics``); a topic with another name (a suffixed
test topic, a side-by-side install) is matched by the table's name it starts with, or given
with ``--type``.

Tail reads by assigned partitions, never joining a consumer group, so looking at a topic does
not rebalance the services reading it; it sees committed records only (``read_committed``)
unless ``--uncommitted``.
"""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Iterator
from typing import Annotated, Any, TextIO

import typer
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import DecodeError, Message
from pydantic_settings import BaseSettings, SettingsConfigDict

from fleetpipe.core.errors import CodecError, KafkaError
from fleetpipe.core.kafka import Message as KafkaMessage
from fleetpipe.core.packs import Event, events_of
from fleetpipe.core.readers import OFFSET_BEGINNING, OFFSET_END, build_reader, is_partition_eof
from fleetpipe.core.settings import KafkaSettings
from fleetpipe.core.topics import CONTRACTS
from fleetpipe.pb.v1 import (
    alert_pb2,
    deadletter_pb2,
    enriched_pb2,
    notification_pb2,
    pack_pb2,
    state_pb2,
    telemetry_pb2,
    trip_pb2,
)

# Every message a topic may hold, by its full name (for --type).
MESSAGES: dict[str, type[Message]] = {
    m.DESCRIPTOR.full_name: m
    for m in (
        telemetry_pb2.Telemetry,
        enriched_pb2.EnrichedTelemetry,
        alert_pb2.Alert,
        trip_pb2.Trip,
        trip_pb2.DriverScore,
        notification_pb2.NotificationOutcome,
        deadletter_pb2.DeadLetter,
        state_pb2.VehicleState,
        pack_pb2.TelemetryPack,
        pack_pb2.EnrichedPack,
    )
}


class _TailSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="FLEET_", env_nested_delimiter="__", frozen=True, extra="ignore"
    )
    kafka: KafkaSettings = KafkaSettings()


def message_for(topic: str, type_name: str | None = None) -> type[Message]:
    """The message a topic's records (or a pack's events) hold."""
    if type_name is not None:
        try:
            return MESSAGES[type_name]
        except KeyError:
            known = ", ".join(sorted(MESSAGES))
            raise typer.BadParameter(f"unknown message {type_name!r}; one of {known}") from None
    for contract in sorted(CONTRACTS, key=lambda c: -len(c.name)):
        if topic == contract.name or topic.startswith(contract.name + "."):
            return contract.message
    raise typer.BadParameter(
        f"{topic!r} is not a pipeline topic by name; say what it holds with --type"
    )


def event_line(event: Event, message: type[Message]) -> dict[str, Any]:
    """One event as a JSON-ready dict."""
    line: dict[str, Any] = {"partition": event.partition(), "offset": event.offset()}
    if event.packed:
        line["packed"] = True
        line["index"] = event.index
    key = event.key()
    if key is not None:
        line["key"] = key.decode(errors="replace")
    value = event.value()
    if value is None:
        line["value"] = None  # a tombstone
        return line
    try:
        decoded = message.FromString(value)
    except (DecodeError, ValueError) as exc:
        line["error"] = f"cannot decode {message.DESCRIPTOR.full_name}: {exc}"
        line["value_base64"] = base64.b64encode(value).decode()
        return line
    line["value"] = MessageToDict(decoded, preserving_proto_field_name=True)
    return line


def record_lines(msg: KafkaMessage, message: type[Message]) -> Iterator[dict[str, Any]]:
    """The lines of one record: one per event of a pack, else one."""
    try:
        events = events_of(msg)
    except CodecError as exc:
        yield {"partition": msg.partition(), "offset": msg.offset(), "error": str(exc)}
        return
    for event in events:
        yield event_line(event, message)


def tail(
    kafka: KafkaSettings,
    topic: str,
    *,
    message: type[Message],
    out: TextIO,
    from_beginning: bool = False,
    max_events: int | None = None,
    partitions: list[int] | None = None,
    exit_at_end: bool = False,
    read_committed: bool = True,
) -> int:
    """Write the topic's events to ``out`` as JSON lines; returns how many were written."""
    reader = build_reader(
        kafka,
        client_id="fleetpipe-tail",
        read_committed=read_committed,
        partition_eof=exit_at_end,
    )
    written = 0
    try:
        existing = reader.partitions(topic)
        chosen = partitions if partitions else existing
        missing = sorted(set(chosen) - set(existing))
        if missing:
            raise KafkaError(f"{topic} has no partition {missing[0]} (it has {len(existing)})")
        start = OFFSET_BEGINNING if from_beginning else OFFSET_END
        reader.assign(topic, dict.fromkeys(chosen, start))
        at_end: set[int] = set()
        while max_events is None or written < max_events:
            for msg in reader.consume(500, 0.5):
                if is_partition_eof(msg):
                    at_end.add(msg.partition() or 0)
                    continue
                if msg.error() is not None:
                    raise KafkaError(f"reading {topic}: {msg.error()}")
                at_end.discard(msg.partition() or 0)
                for line in record_lines(msg, message):
                    out.write(json.dumps(line, separators=(",", ":")) + "\n")
                    written += 1
                    if max_events is not None and written >= max_events:
                        break
                if max_events is not None and written >= max_events:
                    break
            out.flush()
            if exit_at_end and len(at_end) == len(chosen):
                break
    finally:
        reader.close()
    return written


def tail_command(
    topic: Annotated[str, typer.Argument(help="The topic, e.g. fleet.telemetry.raw.v1")],
    from_beginning: Annotated[
        bool, typer.Option("--from-beginning", "-b", help="Start at the first retained record")
    ] = False,
    max_events: Annotated[
        int | None, typer.Option("--max", "-n", min=1, help="Stop after this many events")
    ] = None,
    partition: Annotated[
        list[int] | None,
        typer.Option("--partition", "-p", min=0, help="Only this partition (repeatable)"),
    ] = None,
    exit_at_end: Annotated[
        bool, typer.Option("--exit", "-e", help="Stop at the end of the partitions")
    ] = False,
    type_name: Annotated[
        str | None,
        typer.Option("--type", help="The message the topic holds, e.g. fleetpipe.v1.Telemetry"),
    ] = None,
    uncommitted: Annotated[
        bool, typer.Option("--uncommitted", help="Also show records of open transactions")
    ] = False,
) -> None:
    """Print a topic's events as JSON lines, packs opened (Kafka from FLEET_KAFKA__*)."""
    message = message_for(topic, type_name)
    kafka = _TailSettings().kafka
    try:
        tail(
            kafka,
            topic,
            message=message,
            out=sys.stdout,
            from_beginning=from_beginning,
            max_events=max_events,
            partitions=partition,
            exit_at_end=exit_at_end,
            read_committed=not uncommitted,
        )
    except KafkaError as exc:
        typer.echo(f"fleetpipe tail: {exc}", err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
