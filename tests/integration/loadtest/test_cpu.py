"""The pipeline benchmark's CPU accounting: every process filed under its component."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from fleetpipe_dev.bench.cpu import DRIVER, CpuMeter

pytestmark = pytest.mark.integration

BURN = "import time\nend = time.process_time() + {s}\nwhile time.process_time() < end: pass\n"


def _sample_until_exit(meter: CpuMeter, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while proc.poll() is None and time.monotonic() < deadline:
        meter.sample()
        time.sleep(0.05)  # the sampling period, as the benchmark samples


def test_a_busy_service_and_a_short_lived_child_are_charged_to_their_components() -> None:
    idle = subprocess.Popen(
        [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(30)"],
        stdout=subprocess.PIPE,
    )
    assert idle.stdout is not None
    assert idle.stdout.readline() == b"up\n"  # started: its start-up is before the window
    meter = CpuMeter({"ingest": idle.pid})
    own = time.process_time()
    meter.start()
    # Started inside the window by this process: the load driver's, counted from zero. It
    # idles after burning, so the samples see all of its burn before it exits.
    child = subprocess.Popen([sys.executable, "-c", BURN.format(s=0.5) + "time.sleep(0.3)"])
    _sample_until_exit(meter, child)
    usage = meter.stop()
    own = time.process_time() - own  # this process samples: it is the load driver's too
    idle.kill()
    idle.wait()
    driver = usage.seconds.get(DRIVER, 0.0)
    # The burn and this process's own time, at least; at most that plus the child's start-up.
    assert 0.5 + own - 0.05 <= driver <= 0.5 + own + 0.3, (driver, own)
    assert usage.seconds.get("ingest", 0.0) < 0.05, "an idle service costs nothing"
    assert usage.cores(DRIVER) == pytest.approx(usage.seconds[DRIVER] / usage.wall_s)
    assert 0 < usage.machine_share <= 1.05  # two clocks read a moment apart
    doc = usage.as_dict(events=1000)
    components = doc["components"]
    assert isinstance(components, dict)
    assert components[DRIVER]["us_per_event"] == pytest.approx(
        usage.seconds[DRIVER] / 1000 * 1e6, rel=1e-2
    )
