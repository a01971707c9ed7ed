from __future__ import annotations

import pytest

from fleetpipe.core.codecs import ProtoCodec
from fleetpipe.core.errors import CodecError
from fleetpipe.pb.v1 import telemetry_pb2
from fleetpipe_loadtest import synthetic

pytestmark = pytest.mark.unit

codec = ProtoCodec(telemetry_pb2.Telemetry)


def test_roundtrip_keeps_every_field() -> None:
    event = synthetic.telemetry(3, 42)
    assert codec.decode(codec.encode(event)) == event


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"\xff\xff\xff\xff", id="garbage"),
        pytest.param(b"\x0a\x05ab", id="truncated-string"),
        pytest.param(None, id="tombstone"),
    ],
)
def test_undecodable_bytes_raise_codec_error_with_coordinates(data: bytes | None) -> None:
    with pytest.raises(CodecError) as info:
        codec.decode(data, topic="fleet.telemetry.raw.v1", partition=4, offset=99)
    message = str(info.value)
    assert "fleetpipe.v1.Telemetry" in message
    assert "fleet.telemetry.raw.v1[4]@99" in message
    assert info.value.offset == 99
