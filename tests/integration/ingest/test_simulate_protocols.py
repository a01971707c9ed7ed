"""``fleetpipe simulate --protocol mqtt|http``: every generated event reaches the raw topic."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from fleetpipe.core.settings import KafkaSettings, Topics
from fleetpipe_dev.stack.procs import free_port
from fleetpipe_dev.testing import read_events, wait_for
from support.ingest import StartIngest
from support.mqtt import DeviceFleet, StartBridge

pytestmark = pytest.mark.integration


def simulate(token: str, fleet: str, protocol: str, target: str) -> tuple[int, int, int]:
    """Run the simulator (20 vehicles, 60 simulated seconds, as fast as it goes); its
    generated, acknowledged and accepted counts."""
    done = subprocess.run(
        [
            sys.executable, "-c", "from fleetpipe.cli import main; main()", "simulate",
            "--protocol", protocol, "--target", target, "--fleet", fleet,
            "--vehicles", "20", "--duration", "60", "--speedup", "0", "--streams", "2",
            "--batch-size", "50", "--scenarios", "none",
        ],
        env={**os.environ, "FLEET_SIMULATE_TOKEN": token, "COLUMNS": "200"},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    summary = re.search(
        r"([\d,]+) events generated.*\nacked ([\d,]+) \(accepted ([\d,]+)", done.stderr
    )
    assert summary, done.stderr[-2000:]
    assert token not in done.stderr
    generated, acked, accepted = (int(g.replace(",", "")) for g in summary.groups())
    return generated, acked, accepted


def test_simulate_over_mqtt_publishes_every_event_through_the_bridge(
    device_fleet: DeviceFleet,
    start_bridge: StartBridge,
    topics: Topics,
    kafka_settings: KafkaSettings,
) -> None:
    start_bridge(topics)
    target = f"127.0.0.1:{device_fleet.broker.port}"
    generated, acked, accepted = simulate(device_fleet.token, device_fleet.fleet_id, "mqtt", target)
    assert generated == acked == accepted == 20 * 60
    wait_for(
        lambda: len(read_events(kafka_settings, topics.raw, idle_s=0.5)) >= generated,
        timeout=60,
        what="every event on the raw topic",
    )


def test_simulate_over_http_posts_every_event(
    start_ingest: StartIngest, topics: Topics, kafka_settings: KafkaSettings
) -> None:
    port = free_port()
    ingest = start_ingest(topics, FLEET_HTTP__PORT=str(port), FLEET_HTTP__HOST="127.0.0.1")
    generated, acked, accepted = simulate(ingest.token_a, "fleet-a", "http", f"127.0.0.1:{port}")
    assert generated == acked == accepted == 20 * 60
    assert len(read_events(kafka_settings, topics.raw)) == generated
