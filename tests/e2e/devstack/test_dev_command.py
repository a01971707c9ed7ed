"""`fleetpipe dev up | status | down` with the real broker and database, checked with kcat."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import psycopg
import pytest

from fleetpipe_dev.stack.procs import free_port, is_ours

pytestmark = pytest.mark.e2e


def _fleetpipe(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fleetpipe.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_dev_up_serves_kcat_and_down_stops_only_what_it_started() -> None:
    kcat = shutil.which("kcat") or shutil.which("kafkacat")
    assert kcat, "Debian's kcat is part of the test environment (scripts/setup.sh installs it)"
    home = Path(tempfile.mkdtemp(prefix="fleetpipe-dev-"))
    os.chmod(home, 0o755)
    port = free_port()
    env = {
        "FLEET_DEV_HOME": str(home),
        "FLEET_DEV_KAFKA_PORT": str(port),
        "FLEET_DEV_KAFKA_CONTROLLER_PORT": str(free_port()),
        "FLEET_DEV_KAFKA_SASL_PORT": str(free_port()),
        "FLEET_DEV_POSTGRES_PORT": str(free_port()),
        "FLEET_DEV_POSTGRES_HOME": str(home / "pg"),
        "FLEET_DEV_KAFKA_HEAP": "512m",
        "FLEET_DEV_JAEGER_OTLP_GRPC_PORT": str(free_port()),
        "FLEET_DEV_JAEGER_OTLP_HTTP_PORT": str(free_port()),
        "FLEET_DEV_JAEGER_QUERY_PORT": str(free_port()),
        "FLEET_DEV_JAEGER_QUERY_GRPC_PORT": str(free_port()),
        "FLEET_DEV_MOSQUITTO_PORT": str(free_port()),
        "FLEET_DEV_JAEGER_HEALTH_PORT": str(free_port()),
    }
    bystander = subprocess.Popen(["sleep", "300"])  # something the stack must not touch
    try:
        up = _fleetpipe(env, "dev", "up", "--partitions", "4")
        assert up.returncode == 0, up.stdout + up.stderr
        assert "fleet.telemetry.raw.v1: created" in up.stdout

        bootstrap = f"127.0.0.1:{port}"
        produced = subprocess.run(
            [kcat, "-P", "-b", bootstrap, "-t", "fleet.telemetry.raw.v1", "-K", ":"],
            input="veh-1:hello\nveh-2:world\n",
            text=True,
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert produced.returncode == 0, produced.stderr
        consumed = subprocess.run(
            [
                kcat,
                "-C",
                "-b",
                bootstrap,
                "-t",
                "fleet.telemetry.raw.v1",
                "-e",
                "-q",
                "-f",
                "%k=%s\n",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert sorted(consumed.stdout.split()) == ["veh-1=hello", "veh-2=world"]
        listed = subprocess.run(
            [kcat, "-L", "-b", bootstrap, "-t", "fleet.telemetry.raw.v1"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert "4 partitions" in listed.stdout

        status = json.loads(_fleetpipe(env, "dev", "status", "--json").stdout)
        assert status["kafka"]["running"] and status["postgres"]["running"]
        # The MQTT broker for devices (Debian's mosquitto, installed by scripts/setup.sh).
        assert status["mosquitto"]["running"], up.stdout
        with psycopg.connect(status["postgres"]["address"]) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        # Jaeger is part of the test environment (scripts/build-go-tools.sh jaeger).
        assert status["jaeger"]["running"], up.stdout
        assert f"OTEL_EXPORTER_OTLP_ENDPOINT={status['jaeger']['otlp']}" in up.stdout
        with urllib.request.urlopen(f"{status['jaeger']['address']}/api/services") as reply:
            assert reply.status == 200

        again = _fleetpipe(env, "dev", "up", "--partitions", "4")
        assert "already running" in again.stdout

        down = _fleetpipe(env, "dev", "down")
        assert down.returncode == 0, down.stderr
        for proc in status.values():
            assert not is_ours(proc["pid"], proc["marker"])
        assert bystander.poll() is None, "down must leave other processes alone"
    finally:
        _fleetpipe(env, "dev", "down", "--purge")
        bystander.kill()
        shutil.rmtree(home, ignore_errors=True)
