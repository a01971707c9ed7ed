"""Where the machine's CPU goes during a load: per component, from every process's CPU times.

A :class:`CpuMeter` samples every process on the machine (psutil) and files each under a
component: a pipeline service by its pid, the Kafka broker and PostgreSQL (the postmaster and
every backend) by their command lines, the load driver (this process and the sender processes
it spawned) by parentage, and the rest as ``other``. Processes that start or end inside the
window count from their first sample to their last, so sampling about once a second loses at
most a second of a short-lived process. The machine's own busy time (``/proc/stat``) is the
total the components are read against.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import psutil

BROKER = "kafka broker"
DATABASE = "postgresql"
DRIVER = "load driver"
OTHER = "other"


@dataclass(frozen=True)
class CpuUsage:
    """CPU seconds per component over a window of ``wall_s`` seconds on ``cpus`` cores."""

    wall_s: float
    cpus: int
    seconds: Mapping[str, float]
    machine_busy_s: float

    def cores(self, component: str) -> float:
        """Average cores the component kept busy (1.0 = one core all the time)."""
        return self.seconds.get(component, 0.0) / self.wall_s if self.wall_s > 0 else 0.0

    def per_event_us(self, component: str, events: int) -> float:
        return self.seconds.get(component, 0.0) / events * 1e6 if events else float("nan")

    @property
    def machine_share(self) -> float:
        """Share of the machine's total CPU capacity that was busy (1.0 = every core)."""
        return self.machine_busy_s / (self.wall_s * self.cpus) if self.wall_s > 0 else 0.0

    def as_dict(self, events: int) -> dict[str, object]:
        return {
            "wall_s": round(self.wall_s, 2),
            "cpus": self.cpus,
            "machine_busy_share": round(self.machine_share, 3),
            "components": {
                name: {
                    "cpu_s": round(s, 2),
                    "cores": round(self.cores(name), 3),
                    "us_per_event": round(self.per_event_us(name, events), 2),
                }
                for name, s in sorted(self.seconds.items(), key=lambda kv: -kv[1])
            },
        }


@dataclass
class CpuMeter:
    """Samples the CPU time of every process; ``services`` maps component names to pids."""

    services: Mapping[str, int]
    _first: dict[int, tuple[str, float]] = field(default_factory=dict)
    _last: dict[int, float] = field(default_factory=dict)
    _t0: float = 0.0
    _busy0: float = 0.0

    def __post_init__(self) -> None:
        self._by_pid = {pid: name for name, pid in self.services.items()}

    def start(self) -> None:
        self._first.clear()
        self._last.clear()
        self._t0 = time.monotonic()
        self._busy0 = _machine_busy()
        self.sample(baseline=True)

    def sample(self, *, baseline: bool = False) -> None:
        for proc in psutil.process_iter(["pid", "ppid", "name", "cmdline", "cpu_times"]):
            info = proc.info
            times = info.get("cpu_times")
            if times is None:
                continue
            pid = int(info["pid"])
            used = float(times.user + times.system)
            if pid not in self._first:
                component = self._component(info)
                # A process first seen after the start began inside the window: all of its
                # CPU time belongs to it.
                self._first[pid] = (component, used if baseline else 0.0)
            self._last[pid] = used

    def stop(self) -> CpuUsage:
        self.sample()
        wall = time.monotonic() - self._t0
        busy = _machine_busy() - self._busy0
        seconds: dict[str, float] = {}
        for pid, (component, first) in self._first.items():
            spent = self._last.get(pid, first) - first
            if spent > 0:
                seconds[component] = seconds.get(component, 0.0) + spent
        return CpuUsage(
            wall_s=wall, cpus=psutil.cpu_count() or 1, seconds=seconds, machine_busy_s=busy
        )

    def _component(self, info: Mapping[str, object]) -> str:
        pid = int(info["pid"])  # type: ignore[call-overload]
        if pid in self._by_pid:
            return self._by_pid[pid]
        # By command line first: the benchmark may have started the broker and the database
        # itself, which makes them its children.
        name = str(info.get("name") or "")
        cmdline = " ".join(str(a) for a in (info.get("cmdline") or []))  # type: ignore[attr-defined]
        if name == "java" and "kafka.Kafka" in cmdline:
            return BROKER
        if name == "postgres" or name.startswith("postgres:") or "postgres:" in cmdline:
            return DATABASE
        me = os.getpid()
        if pid == me or info.get("ppid") == me:
            return DRIVER
        return OTHER


def _machine_busy() -> float:
    t = psutil.cpu_times()
    return float(t.user + t.nice + t.system + t.irq + t.softirq + getattr(t, "steal", 0.0))
