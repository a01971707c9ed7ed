"""A private Docker engine: its own socket, data root and cgroup, running only for a build.

The host's Docker engine (if any) is left alone. Images stay in the private data root between
builds, so the second build reuses every layer. Its containers' cgroups live under a parent of
its own (``--cgroup-parent``), so stopping removes exactly the cgroup folders it made.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

from fleetpipe_dev.stack.procs import StartError, spawn, stop_pid, wait_until

CGROUP_PARENT = "fleetpipe-build"
CGROUP_ROOT = Path("/sys/fs/cgroup")

Say = Callable[[str], None]


class PrivateDockerd:
    """``dockerd`` under ``home``; :meth:`running` starts it and always stops it."""

    def __init__(self, home: Path) -> None:
        self.home = home

    @property
    def socket(self) -> Path:
        return self.home / "docker.sock"

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def log_file(self) -> Path:
        return self.home / "logs" / "dockerd.log"

    @property
    def exec_root(self) -> Path:
        return self.home / "docker-exec"

    def env(self) -> dict[str, str]:
        """The environment a ``docker`` client needs to talk to this engine.

        ``DOCKER_BUILDKIT=0``: the legacy builder is part of the engine, while BuildKit's client
        (buildx) is a separate plugin that a Debian machine may not have.
        """
        return {**os.environ, "DOCKER_HOST": self.host, "DOCKER_BUILDKIT": "0"}

    def _command(self) -> list[str]:
        dockerd = shutil.which("dockerd")
        if dockerd is None:
            raise StartError("dockerd not found: install Debian's docker.io (scripts/setup.sh)")
        return [
            dockerd,
            f"--host={self.host}",
            f"--data-root={self.home / 'docker'}",
            f"--exec-root={self.exec_root}",
            f"--pidfile={self.home / 'docker.pid'}",
            f"--cgroup-parent=/{CGROUP_PARENT}",
            # Builds use the host's network (`docker build --network host`): the engine needs
            # no bridge, NAT or firewall rules of its own, so it changes nothing on the host.
            "--bridge=none",
            "--iptables=false",
            "--ip6tables=false",
            "--ip-forward=false",
            "--ip-masq=false",
        ]

    @contextlib.contextmanager
    def running(self, *, say: Say = print) -> Iterator[PrivateDockerd]:
        self.home.mkdir(parents=True, exist_ok=True)
        say(f"starting a private Docker engine ({self.socket})")
        proc = spawn(self._command(), log_file=self.log_file)
        try:
            wait_until(self._answers, timeout=60, what="dockerd", proc=proc, log_file=self.log_file)
            yield self
        finally:
            stop_pid(proc.pid, str(self.home))
            self._clean_up()
            say("private Docker engine stopped")

    def _answers(self) -> bool:
        result = subprocess.run(
            ["docker", "version", "--format", "{{.Server.Version}}"],
            env=self.env(),
            capture_output=True,
            check=False,
        )
        return result.returncode == 0

    def _clean_up(self) -> None:
        """What dockerd 20.10 leaves behind: a mounted network namespace and empty cgroups."""
        netns = self.exec_root / "netns"
        if netns.is_dir():
            for entry in netns.iterdir():
                subprocess.run(["umount", "-l", str(entry)], capture_output=True, check=False)
        remove_cgroup_trees(CGROUP_PARENT)


def remove_cgroup_trees(name: str) -> None:
    """rmdir ``/sys/fs/cgroup/<hierarchy>/<name>`` and everything below it, deepest first.

    A cgroup folder is removed with rmdir only (its files are the kernel's); one that still
    holds a process stays, and the error is ignored.
    """
    if not CGROUP_ROOT.is_dir():
        return
    for hierarchy in CGROUP_ROOT.iterdir():
        top = hierarchy / name
        if not top.is_dir():
            continue
        folders = sorted(
            (p for p, _, _ in os.walk(top)), key=lambda p: p.count(os.sep), reverse=True
        )
        for folder in folders:
            with contextlib.suppress(OSError):
                os.rmdir(folder)
