"""A real Prometheus (Debian's package, installed by scripts/setup.sh) on a loopback port,
scraping the given targets once a second: the console's health read through its HTTP API."""

from __future__ import annotations

import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from fleetpipe_dev.stack.procs import free_port
from fleetpipe_dev.testing import wait_for


@dataclass(frozen=True)
class PrometheusHandle:
    url: str
    log: Path


@contextmanager
def running_prometheus(jobs: Mapping[str, str], home: Path) -> Iterator[PrometheusHandle]:
    """Prometheus scraping ``jobs`` (job name → ``host:port`` of a /metrics page)."""
    binary = shutil.which("prometheus")
    # A missing server is a setup error (scripts/setup.sh installs it), never a skip.
    assert binary, "Debian's prometheus is needed: scripts/setup.sh"
    home.mkdir(parents=True, exist_ok=True)
    config = home / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "scrape_timeout": "900ms"},
                "scrape_configs": [
                    {"job_name": job, "static_configs": [{"targets": [target]}]}
                    for job, target in jobs.items()
                ],
            }
        )
    )
    port = free_port()
    log = home / "prometheus.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={home / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert proc.poll() is None, f"prometheus exited:\n{log.read_text()[-3000:]}"
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as reply:
                return int(reply.status) == 200
        except (urllib.error.URLError, OSError):
            return False

    try:
        wait_for(ready, timeout=60, interval=0.2, what="prometheus to be ready")
        yield PrometheusHandle(url, log)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
