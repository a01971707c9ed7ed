"""A local server process the dev stack spawns, waits for, recognises and stops.

Kafka, PostgreSQL and Jaeger differ in how they are prepared and asked whether they are up;
what a server does with its process — spawn it with its log under its home, wait until it
answers (or fails with its log's tail), stop it only when its marker is in the pid's command
line — is said once here.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from fleetpipe_dev.stack.procs import spawn, stop_pid, wait_until


@dataclass
class LocalServer:
    """One server process under ``home``; subclasses name their log, marker and stop signal."""

    home: Path

    log_name: ClassVar[str]
    # The graceful stop; ``stop(kill=True)`` always sends SIGKILL.
    stop_signal: ClassVar[signal.Signals] = signal.SIGTERM

    @property
    def log_file(self) -> Path:
        return self.home / self.log_name

    @property
    def marker(self) -> str:
        """What the server's command line holds: how ``stop`` recognises its own process."""
        raise NotImplementedError

    def _launch(
        self,
        cmd: Sequence[str],
        *,
        ready: Callable[[], bool],
        what: str,
        timeout: float,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        user: str | None = None,
    ) -> int:
        """Spawn the server and wait until ``ready``; its pid (a StartError when it fails)."""
        proc = spawn(cmd, log_file=self.log_file, env=env, cwd=cwd, user=user)
        wait_until(ready, timeout=timeout, what=what, proc=proc, log_file=self.log_file)
        return proc.pid

    def stop(self, pid: int, *, kill: bool = False) -> bool:
        return stop_pid(pid, self.marker, sig=signal.SIGKILL if kill else self.stop_signal)
