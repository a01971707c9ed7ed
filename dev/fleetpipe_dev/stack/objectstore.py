"""An S3-compatible object store on loopback: moto's server mode (a PyPI package), for the
lake's tests.

moto lives in its own environment under the cache (``scripts/setup.sh`` makes it from
``requirements/moto-server.txt``): its AWS client library pins versions the project's
environment does not share. ``FLEETPIPE_MOTO_SERVER`` names another ``moto_server``.

moto keeps its buckets in memory; every bucket is gone when it stops. It checks no signature,
so any key pair is accepted, but the lake's S3 client still needs one: :attr:`credentials`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from fleetpipe_dev.stack.kafka import default_cache
from fleetpipe_dev.stack.procs import StartError, port_open
from fleetpipe_dev.stack.server import LocalServer


def moto_server() -> Path:
    explicit = os.environ.get("FLEETPIPE_MOTO_SERVER")
    path = Path(explicit) if explicit else default_cache() / "moto" / "bin" / "moto_server"
    if not os.access(path, os.X_OK):
        raise StartError(
            f"{path} not found: run scripts/setup.sh (it installs moto's server into the cache)"
            " or set FLEETPIPE_MOTO_SERVER"
        )
    return path


@dataclass
class S3Server(LocalServer):
    port: int

    log_name = "moto-s3.log"
    region: ClassVar[str] = "us-east-1"
    credentials: ClassVar[dict[str, str]] = {
        "AWS_ACCESS_KEY_ID": "fleetpipe-dev",
        "AWS_SECRET_ACCESS_KEY": "fleetpipe-dev-secret",
    }

    @property
    def command(self) -> list[str]:
        return [str(moto_server()), "-H", "127.0.0.1", "-p", str(self.port)]

    @property
    def marker(self) -> str:
        return " ".join(self.command)

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, bucket: str, prefix: str = "") -> str:
        """A lake location in ``bucket`` (pyarrow's S3 options in the query)."""
        path = f"{bucket}/{prefix}".rstrip("/")
        return f"s3://{path}?endpoint_override={self.endpoint}&scheme=http&region={self.region}"

    def start(self, *, timeout: float = 60.0) -> int:
        self.home.mkdir(parents=True, exist_ok=True)
        return self._launch(
            self.command,
            ready=lambda: port_open(self.port),
            what=f"moto's S3 server on {self.endpoint}",
            timeout=timeout,
            cwd=self.home,
        )
