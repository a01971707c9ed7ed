"""What a report says about the machine it ran on: every figure depends on it."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

from fleetpipe.core.kafka import client_versions


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def _java() -> str:
    # The broker's JVM matters where the broker runs on the same box; a pod has no java.
    try:
        out = subprocess.run(["java", "-version"], capture_output=True, text=True, check=False)
    except OSError:
        return "none"
    return (out.stderr.splitlines() or ["?"])[0]


def machine() -> dict[str, str]:
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cpus": str(os.cpu_count()),
        "cpu_model": _cpu_model(),
        "memory_gib": f"{mem_gib:.0f}",
        "os": platform.platform(),
        "python": platform.python_version(),
        **client_versions(),
        "java": _java(),
        # Other work on the box skews every figure: the load average says how busy it was.
        "load_average_1_5_15": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
