"""The Twilio-contract server as its own process, the way the demo and the load test run it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fleetpipe.notification.provider import twilio_client
from fleetpipe_dev.stack.procs import free_port
from fleetpipe_dev.testing import wait_for

pytestmark = pytest.mark.integration


def test_python_m_serves_the_contract(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "FLEET_TWILIO__ACCOUNT_SID": "AC" + "1" * 32,
        "FLEET_TWILIO__AUTH_TOKEN": "secret-token",
    }
    log = tmp_path / "twilio.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fleetpipe_dev.twilio", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(
            lambda: re.search(r"Twilio contract server on", log.read_text()),
            timeout=30,
            what="the server to listen",
        )
        client = twilio_client(
            "AC" + "1" * 32, "secret-token", api_base_url=f"http://127.0.0.1:{port}", timeout_s=5
        )
        message = client.messages.create(to="+31612345678", from_="+15005550006", body="hi")
        assert client.messages(message.sid).fetch().body == "hi"
        assert "secret-token" not in log.read_text(), "the token is never logged"
    finally:
        proc.terminate()
        proc.wait(10)


def test_it_refuses_to_start_without_credentials() -> None:
    env = {k: v for k, v in os.environ.items() if "TWILIO" not in k}
    result = subprocess.run(
        [sys.executable, "-m", "fleetpipe_dev.twilio", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode != 0 and "FLEET_TWILIO__ACCOUNT_SID" in result.stderr
