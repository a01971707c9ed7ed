"""An undecodable record goes to the dead-letter topic with its reason; the loop carries on."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetpipe.core.settings import KafkaSettings, Topics
from fleetpipe.pb.v1 import deadletter_pb2
from fleetpipe_dev.testing import (
    produce_all,
    read_all,
    start_passthrough,
    wait_committed,
)
from fleetpipe_loadtest import synthetic
from support.messages import decoded, headers_of, value_of

pytestmark = pytest.mark.integration


def test_undecodable_records_are_dead_lettered_and_the_rest_flow(
    kafka_settings: KafkaSettings, topics: Topics, tmp_path: Path
) -> None:
    good = [synthetic.telemetry(v, 1).SerializeToString() for v in range(50)]
    bad = [b"\xff\xfe\xfd", b"\x0a\x10short"]
    items = (
        [(b"veh-good", g) for g in good[:25]]
        + [(b"veh-bad", b) for b in bad]
        + [(b"veh-good", g) for g in good[25:]]
    )
    produce_all(kafka_settings, topics.raw, items)

    group = f"dl-{topics.raw}"
    worker = start_passthrough(kafka_settings, topics, tmp_path / "worker.log", group=group)
    wait_committed([worker], kafka_settings, group, topics.raw, len(items), timeout=90)
    assert worker.stop() == 0

    passed = [value_of(m) for m in read_all(kafka_settings, topics.enriched)]
    assert sorted(passed) == sorted(good), "valid records before and after the bad ones flow"

    letters = read_all(kafka_settings, topics.deadletter)
    assert len(letters) == 2
    for msg in letters:
        headers = headers_of(msg)
        assert headers["fp-reason"] == b"undecodable"
        assert headers["fp-source-topic"] == topics.raw.encode()
        assert headers["fp-service"] == b"passthrough"
        letter = decoded(msg, deadletter_pb2.DeadLetter)
        assert letter.payload in bad
        assert "fleetpipe.v1.Telemetry" in letter.error
        assert f"{topics.raw}[{letter.source_partition}]@{letter.source_offset}" in letter.error
        assert msg.key() == b"veh-bad"
