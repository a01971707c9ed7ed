"""An undecodable record goes to the dead-letter topic with its reason; the loop carries on."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetpipe.core.settings import KafkaSettings, Topics
from fleetpipe.pb.v1 import deadletter_pb2
from fleetpipe_dev.testing import (
    ServiceProcess,
    committed_total,
    produce_all,
    read_all,
    service_env,
    wait_for,
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
    worker = ServiceProcess(
        "fleetpipe.passthrough",
        service_env(
            kafka_settings,
            topics,
            {
                "FLEET_INPUT_TOPIC": topics.raw,
                "FLEET_OUTPUT_TOPIC": topics.enriched,
                "FLEET_GROUP_ID": group,
                "FLEET_MODE": "exactly-once",
            },
        ),
        tmp_path / "worker.log",
    ).start()

    def all_committed() -> bool:
        worker.check_alive()
        return committed_total(kafka_settings, group, topics.raw) >= len(items)

    wait_for(all_committed, timeout=90, what="every record to be consumed")
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
