"""The live stream: an alert produced on Kafka reaches a listener within a second, and only a
listener whose token covers the alert's fleet."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest

from fleetpipe_dev.testing import produce_all, produce_packed
from fleetpipe_loadtest import records
from support.console import TOKEN_A, Console
from support.hotstore import HotStoreData

pytestmark = pytest.mark.integration


def _events(response: httpx.Response) -> Iterator[tuple[str, str]]:
    kind = ""
    for line in response.iter_lines():
        if line.startswith("event:"):
            kind = line.partition(":")[2].strip()
        elif line.startswith("data:"):
            yield kind, line.partition(":")[2].strip()


def test_an_alert_on_kafka_reaches_the_stream_within_a_second(
    console: Console, hot: HotStoreData
) -> None:
    other = records.alert("fleet-b-veh-000001", "sos", fleet_id="fleet-b")
    crash = records.alert("fleet-a-veh-000000", "crash", fleet_id="fleet-a")
    with (
        console.client(TOKEN_A) as client,
        client.stream("GET", "/api/v1/stream") as response,
    ):
        assert response.status_code == 200
        events = _events(response)
        assert next(events)[0] == "hello"
        produced = time.monotonic()
        produce_all(
            hot.kafka,
            hot.topics.alerts,
            [(a.vehicle_id, a.SerializeToString()) for a in (other, crash)],
        )
        for kind, data in events:
            if kind != "alert":
                continue
            received = time.monotonic() - produced
            alert = json.loads(data)
            assert alert["alert_id"] == crash.alert_id, "fleet-b's alert never reaches fleet-a"
            break
    assert received < 1.0, f"the alert took {received:.3f}s"
    assert (alert["rule"], alert["state"], alert["fleet_id"]) == ("crash", "OPEN", "fleet-a")


@pytest.mark.parametrize("packed", [False, True], ids=["single records", "packs"])
def test_positions_stream_in_batches_of_the_callers_fleet(
    console: Console, hot: HotStoreData, packed: bool
) -> None:
    now = records.now_us()
    events = [
        records.enriched(i, 10_000, fleet=f, event_time_us=now)
        for f in ("fleet-b", "fleet-a")
        for i in range(2)
    ]
    with (
        console.client(TOKEN_A) as client,
        client.stream("GET", "/api/v1/stream") as response,
    ):
        stream = _events(response)
        assert next(stream)[0] == "hello"
        # Enrichment writes packs; a record of another producer may be a single event.
        produce = produce_packed if packed else produce_all
        produce(
            hot.kafka,
            hot.topics.enriched,
            [(e.telemetry.vehicle_id, e.SerializeToString()) for e in events],
        )
        seen: set[str] = set()
        wanted = {"fleet-a-veh-000000", "fleet-a-veh-000001"}
        for kind, data in stream:
            if kind == "positions":
                # Coalesced a period at a time: the two vehicles may come in two batches.
                seen |= {row[0] for row in json.loads(data)}
                assert seen <= wanted, "only the caller's fleet"
                if seen == wanted:
                    break
    assert seen == wanted
