"""Where the images are built and which base image the project image starts from."""

from __future__ import annotations

import socket
from enum import StrEnum
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from fleetpipe_dev.stack.kafka import default_cache


class BaseSource(StrEnum):
    """Where the Python base image comes from."""

    AUTO = "auto"  # the registry's image when the registry answers, else a local one
    REGISTRY = "registry"  # python:3.11-slim-bookworm, pulled by the Docker engine in use
    LOCAL = "local"  # made here from Debian's packages (debootstrap + python3.11)


class ImageSettings(BaseSettings):
    """``FLEETPIPE_IMAGE_*`` variables; the defaults build on this machine as it is."""

    model_config = SettingsConfigDict(env_prefix="FLEETPIPE_IMAGE_", frozen=True)

    base: BaseSource = BaseSource.AUTO
    tag: str = "0.1.0"
    # The private Docker engine's socket, data and the image archives the cluster imports.
    home: Path = Field(default_factory=lambda: default_cache() / "images")
    registry_image: str = "python:3.11-slim-bookworm"
    registry_probe: str = "registry-1.docker.io:443"
    debian_mirror: str = "http://deb.debian.org/debian"
    debian_suite: str = "bookworm"

    def resolved_base(self) -> BaseSource:
        if self.base is not BaseSource.AUTO:
            return self.base
        return BaseSource.REGISTRY if registry_reachable(self.registry_probe) else BaseSource.LOCAL


def registry_reachable(probe: str, *, timeout: float = 3.0) -> bool:
    """True when a TCP connection to the registry opens: a machine without one fails fast."""
    host, _, port = probe.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return True
    except OSError:
        return False
