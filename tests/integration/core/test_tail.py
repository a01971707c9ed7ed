"""``fleetpipe tail`` on the real broker: packs opened, single records as they are, one JSON line
per event; a record that does not decode is a line saying so, and tail goes on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from fleetpipe.core.kafka import build_producer
from fleetpipe.core.keygroups import KeyGroups
from fleetpipe.core.packs import PACK_HEADERS, event_field
from fleetpipe.core.settings import KafkaSettings, Topics
from fleetpipe_loadtest import synthetic

pytestmark = pytest.mark.integration

PARTITIONS = 3


def _tail(kafka: KafkaSettings, *args: str) -> list[dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "fleetpipe.cli", "tail", *args],
        env={**os.environ, "FLEET_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_tail_prints_each_event_of_packs_and_single_records_as_json_lines(
    kafka_settings: KafkaSettings, make_topics: Any
) -> None:
    topics: Topics = make_topics(PARTITIONS)
    groups = KeyGroups()
    events = [synthetic.telemetry(v, 1) for v in range(12)]
    packs: dict[int, bytes] = {}
    for e in events[:10]:
        p = groups.partition(e.vehicle_id, PARTITIONS)
        packs[p] = packs.get(p, b"") + event_field(e.SerializeToString())
    producer = build_producer(kafka_settings, client_id="tail-test")
    for p, value in sorted(packs.items()):
        producer.produce(topics.raw, value, None, PACK_HEADERS, p)
    for e in events[10:]:
        p = groups.partition(e.vehicle_id, PARTITIONS)
        producer.produce(topics.raw, e.SerializeToString(), e.vehicle_id, None, p)
    producer.produce(topics.raw, b"\x0a\x7fshort", None, PACK_HEADERS, 0)
    producer.flush(30)

    lines = _tail(kafka_settings, topics.raw, "--from-beginning", "--exit")
    good = [line for line in lines if "error" not in line]
    assert sorted((g["value"]["vehicle_id"], g["value"]["seq"]) for g in good) == sorted(
        (e.vehicle_id, str(e.seq)) for e in events
    ), "every event once, the JSON mapping of its Telemetry"
    assert sum(1 for g in good if g.get("packed")) == 10
    singles = [g for g in good if not g.get("packed")]
    assert {g["key"] for g in singles} == {e.vehicle_id for e in events[10:]}
    for g in good:
        assert g["partition"] == groups.partition(g["value"]["vehicle_id"], PARTITIONS)
    (bad,) = [line for line in lines if "error" in line]
    assert bad["partition"] == 0 and "not a pack" in bad["error"]

    counts = {p: sum(1 for g in good if g["partition"] == p) for p in range(PARTITIONS)}
    busiest = max(counts, key=lambda p: counts[p])
    assert counts[busiest] >= 2
    first = _tail(kafka_settings, topics.raw, "--from-beginning", "--max", "2", "-p", str(busiest))
    assert len(first) == 2 and {line["partition"] for line in first} == {busiest}
