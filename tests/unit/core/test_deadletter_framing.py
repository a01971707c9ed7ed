"""A dead letter keeps the failed record's framing headers (a pack's ``fp-pack``) under its own
names, so that a replay sends a pack back as a pack; the dead letter itself is no pack."""

from __future__ import annotations

import pytest

from fleetpipe.core.kafka import Headers
from fleetpipe.core.packs import PACK_HEADERS, event_field, is_pack
from fleetpipe.core.records import dead_letter_record, replayed_format_headers
from fleetpipe.core.settings import Topics
from fleetpipe.deadletters.inbox import DeadLetter, DeadLetterError, plan
from fleetpipe.pb.v1 import deadletter_pb2, telemetry_pb2

pytestmark = pytest.mark.unit

TRACE = ("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")


def _pack() -> bytes:
    events = [telemetry_pb2.Telemetry(vehicle_id=f"veh-{i}", seq=i + 1) for i in range(3)]
    return b"".join(event_field(e.SerializeToString()) for e in events)


def _letter(payload: bytes, source_headers: Headers) -> DeadLetter:
    topics = Topics()
    value, headers = dead_letter_record(
        reason="undecodable",
        error="refused",
        service="enrichment",
        key=None,
        payload=payload,
        source_topic=topics.raw,
        source_partition=3,
        source_offset=41,
        source_headers=[*source_headers, TRACE],
    )
    return DeadLetter(0, 7, 0, list(headers), deadletter_pb2.DeadLetter.FromString(value))


def test_a_dead_pack_carries_its_framing_but_is_no_pack_itself() -> None:
    letter = _letter(_pack(), list(PACK_HEADERS))

    assert not is_pack(letter.headers)
    assert letter.format_headers == list(PACK_HEADERS)
    assert replayed_format_headers(letter.headers) == list(PACK_HEADERS), "no trace context"


def test_a_single_record_has_no_framing_to_carry() -> None:
    event = telemetry_pb2.Telemetry(vehicle_id="veh-1", seq=1).SerializeToString()
    assert _letter(event, []).format_headers == []


def test_a_pack_is_planned_back_to_its_topic_when_every_event_parses() -> None:
    letter = _letter(_pack(), list(PACK_HEADERS))
    (replay,) = plan(Topics(), [letter])
    assert replay.topic == Topics().raw


def test_a_pack_that_does_not_scan_is_refused_before_anything_is_sent() -> None:
    letter = _letter(_pack()[:-2], list(PACK_HEADERS))
    with pytest.raises(DeadLetterError, match="not a pack of Telemetry"):
        plan(Topics(), [letter])
