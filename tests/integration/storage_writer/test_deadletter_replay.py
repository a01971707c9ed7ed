"""``fleetpipe deadletters``: a dead letter listed, shown decoded and replayed, end to end on
Kafka: the replay is recorded, so a second one sends nothing and says so, and the replayed event
is stored exactly once, however often it is replayed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from fleetpipe.core.packs import events_of, is_pack
from fleetpipe.core.records import DL_REASON, dead_letter_record
from fleetpipe.deadletters.inbox import REPLAYED_FROM
from fleetpipe.lake.compaction import Compactor
from fleetpipe.lake.store import LakeStore
from fleetpipe.pb.v1 import telemetry_pb2
from fleetpipe_dev.testing import end_offsets, produce_all, produce_packed, read_all, service_env
from fleetpipe_loadtest.records import now_us
from support.lakes import events

from .conftest import WriterRig

pytestmark = pytest.mark.integration


def _env(rig: WriterRig) -> dict[str, str]:
    return {
        **os.environ,
        **service_env(rig.kafka, rig.topics),
        "FLEET_POSTGRES__DSN": rig.dsn,
        "FLEET_POSTGRES__SCHEMA_NAME": rig.schema,
    }


def _fleetpipe(rig: WriterRig, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "fleetpipe.cli", "deadletters", *args],
        env=_env(rig),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode() + done.stdout.decode()
    return done.stdout.decode()


def _json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_a_replayed_dead_letter_is_stored_exactly_once(rig: WriterRig) -> None:
    good = events(3, 10, start_us=now_us() - 600_000_000)
    # An event an earlier release of a service refused, now fixed: its dead letter carries the
    # record's key, payload and coordinates, as every service writes them.
    failed = events(1, 1, start_us=now_us() - 300_000_000, fleet="fleet-9")[0]
    key = failed.telemetry.vehicle_id.encode()
    value, headers = dead_letter_record(
        reason="invalid",
        error="driver not in the registry yet",
        service="storage-writer",
        key=key,
        payload=failed.SerializeToString(),
        source_topic=rig.topics.enriched,
        source_partition=1,
        source_offset=7,
    )
    produce_all(rig.kafka, rig.topics.deadletter, [(key, value)], headers=headers)
    junk_value, junk_headers = dead_letter_record(
        reason="undecodable", error="truncated", service="enrichment", key=b"x", payload=b"\xff"
    )
    produce_all(rig.kafka, rig.topics.deadletter, [(b"x", junk_value)], headers=junk_headers)
    rig.produce(rig.topics.enriched, good)
    proc = rig.start("w1", FLEET_LAKE__URL=str(rig.workdir / "files"))

    counts = _json_lines(_fleetpipe(rig, "list", "--json"))
    assert sorted((c["reason"], c["source"], c["count"]) for c in counts) == [
        ("invalid", rig.topics.enriched, 1),
        ("undecodable", "-", 1),
    ]
    (listed,) = _json_lines(_fleetpipe(rig, "list", "--records", "--json", "--reason", "invalid"))
    shown = json.loads(_fleetpipe(rig, "show", listed["at"]))
    assert shown["headers"][DL_REASON] == "invalid"
    assert shown["source"] == {"topic": rig.topics.enriched, "partition": 1, "offset": 7}
    assert shown["payload"]["telemetry"]["vehicleId"] == failed.telemetry.vehicle_id
    assert shown["payload"]["vehicle"]["fleetId"] == "fleet-9"

    refused = subprocess.run(
        [sys.executable, "-m", "fleetpipe.cli", "deadletters", "replay", "--reason", "undecodable"],
        env=_env(rig),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert refused.returncode == 1
    assert "names no source topic" in refused.stderr.decode()

    def source_records() -> int:
        return sum(end_offsets(rig.kafka, rig.topics.enriched).values())

    before = source_records()
    assert "1 dead letter(s) replayed" in _fleetpipe(rig, "replay", "--at", listed["at"])
    assert source_records() == before + 1
    # Replayed again, by mistake or by a retried job: recorded, so nothing is sent.
    second = _fleetpipe(rig, "replay", "--reason", "invalid")
    assert f"{listed['at']} was replayed before (1 time(s)" in second, second
    assert "1 dead letter(s) already replayed: nothing sent" in second, second
    assert "0 dead letter(s) replayed" in second, second
    assert source_records() == before + 1
    # Asked for on purpose (--again), it is sent, and still stored once.
    assert "1 dead letter(s) replayed" in _fleetpipe(rig, "replay", "--at", listed["at"], "--again")
    assert source_records() == before + 2
    ((target, replays_done),) = rig.sql(
        "SELECT target_topic, replays FROM dead_letter_replays WHERE dead_letter_topic = %s",
        rig.topics.deadletter,
    )
    assert (target, replays_done) == (rig.topics.enriched, 2)
    rig.wait_consumed(proc)
    assert proc.stop() == 0

    stored = rig.sql("SELECT vehicle_id, seq, fleet_id FROM telemetry WHERE fleet_id = 'fleet-9'")
    assert stored == [(failed.telemetry.vehicle_id, failed.telemetry.seq, "fleet-9")]
    assert rig.scalar("SELECT count(*) FROM telemetry") == len(good) + 1

    store = LakeStore.from_url(rig.workdir / "files")
    Compactor(store).run()
    silver = store.dataset([p for p, _ in store.files("silver/telemetry")]).to_table()
    assert silver.num_rows == len(good) + 1
    assert silver["fleet_id"].to_pylist().count("fleet-9") == 1


def _names(msg: Any) -> set[str]:
    raw = msg.headers() or []
    return set(raw) if isinstance(raw, dict) else {name for name, _ in raw}


def test_a_dead_lettered_pack_goes_back_as_a_pack_to_its_partition(rig: WriterRig) -> None:
    made = [e.telemetry for e in events(4, 5, start_us=now_us() - 600_000_000)]
    produce_packed(
        rig.kafka,
        rig.topics.raw,
        [(t.vehicle_id, t.SerializeToString()) for t in made],
        events_per_pack=1000,
    )
    pack = read_all(rig.kafka, rig.topics.raw)[0]
    assert is_pack(pack.headers())
    # A whole pack refused by a consumer (its bytes kept untouched), as the core dead-letters
    # a record: with the failed record's headers.
    value, headers = dead_letter_record(
        reason="undecodable",
        error="a release that could not read it, fixed since",
        service="enrichment",
        key=None,
        payload=pack.value(),
        source_topic=rig.topics.raw,
        source_partition=pack.partition() or 0,
        source_offset=pack.offset() or 0,
        source_headers=pack.headers(),
    )
    assert not is_pack(headers), "the dead letter itself is not a pack"
    produce_all(rig.kafka, rig.topics.deadletter, [(None, value)], headers=headers)
    (listed,) = _json_lines(_fleetpipe(rig, "list", "--records", "--json"))

    assert "1 dead letter(s) replayed" in _fleetpipe(rig, "replay", "--at", listed["at"])

    replayed = [m for m in read_all(rig.kafka, rig.topics.raw) if REPLAYED_FROM in _names(m)]
    (back,) = replayed
    assert is_pack(back.headers()), "it carries its pack header again"
    assert (back.partition(), back.key(), back.value()) == (pack.partition(), None, pack.value())
    events_back = [telemetry_pb2.Telemetry.FromString(e.value() or b"") for e in events_of(back)]
    originals = [telemetry_pb2.Telemetry.FromString(e.value() or b"") for e in events_of(pack)]
    assert len(events_back) > 1 and events_back == originals
