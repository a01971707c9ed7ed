"""Jaeger v2 on loopback: OTLP in, traces in memory, the query API out.

The binary is built from the Go module proxy by ``scripts/build-go-tools.sh jaeger`` into the
cache (``$FLEETPIPE_CACHE/bin``, by default ``~/.cache/fleetpipe/bin``); its configuration is
``jaeger.yaml`` next to this module, every port taken from the environment. Each server copies
it into its own folder and runs with that copy, so the copy's path on the command line tells
its process apart from any other Jaeger on the machine.
"""

from __future__ import annotations

import json
import os
import urllib.parse
import urllib.request
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from fleetpipe_dev.stack.kafka import default_cache
from fleetpipe_dev.stack.procs import StartError
from fleetpipe_dev.stack.server import LocalServer

BUILD_HINT = "scripts/build-go-tools.sh jaeger"


def jaeger_binary(directory: Path | None = None) -> Path:
    """The Jaeger v2 binary; a clear error naming the build script when it is missing."""
    path = (directory or default_cache() / "bin") / "jaeger"
    if not os.access(path, os.X_OK):
        raise StartError(
            f"jaeger not found at {path}: build it (once, cached) with `{BUILD_HINT}`, "
            "or point FLEETPIPE_CACHE at a cache holding bin/jaeger"
        )
    return path


def config_text() -> str:
    return (resources.files("fleetpipe_dev.stack") / "jaeger.yaml").read_text()


@dataclass
class JaegerServer(LocalServer):
    otlp_grpc_port: int
    otlp_http_port: int
    query_port: int
    query_grpc_port: int
    health_port: int
    binary: Path | None = None
    max_traces: int = 100_000

    @property
    def config_file(self) -> Path:
        return self.home / "jaeger.yaml"

    log_name = "jaeger.log"

    @property
    def marker(self) -> str:
        return str(self.config_file)

    @property
    def otlp_endpoint(self) -> str:
        """For ``OTEL_EXPORTER_OTLP_ENDPOINT`` (OTLP over gRPC, plain text on loopback)."""
        return f"http://127.0.0.1:{self.otlp_grpc_port}"

    @property
    def query_url(self) -> str:
        return f"http://127.0.0.1:{self.query_port}"

    def env(self) -> dict[str, str]:
        return {
            "JAEGER_HOST": "127.0.0.1",
            "JAEGER_OTLP_GRPC_PORT": str(self.otlp_grpc_port),
            "JAEGER_OTLP_HTTP_PORT": str(self.otlp_http_port),
            "JAEGER_QUERY_HTTP_PORT": str(self.query_port),
            "JAEGER_QUERY_GRPC_PORT": str(self.query_grpc_port),
            "JAEGER_HEALTH_PORT": str(self.health_port),
            "JAEGER_MAX_TRACES": str(self.max_traces),
            "JAEGER_LOG_LEVEL": "warn",
        }

    def start(self, *, timeout: float = 60.0) -> int:
        """Start the server and wait for its health check; returns its pid."""
        binary = self.binary or jaeger_binary()
        self.home.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(config_text())
        return self._launch(
            [str(binary), "--config", str(self.config_file)],
            ready=self._healthy,
            what=f"jaeger (health on 127.0.0.1:{self.health_port})",
            timeout=timeout,
            env=self.env(),
            cwd=self.home,
        )

    def _healthy(self) -> bool:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.health_port}/status", timeout=2
        ) as reply:
            return int(reply.status) == 200

    # -- the query API -------------------------------------------------------------------------
    def _get(self, path: str, **params: str | int) -> Any:
        query = urllib.parse.urlencode({k: str(v) for k, v in params.items()})
        suffix = f"{path}?{query}" if query else path
        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.query_port}{suffix}", timeout=10
        ) as reply:
            return json.loads(reply.read())

    def services(self) -> list[str]:
        return list(self._get("/api/services").get("data") or [])

    def traces(self, service: str, *, limit: int = 100, lookback: str = "1h") -> list[Any]:
        """Traces with a span of ``service``, in the query API's JSON (``data`` of the reply)."""
        return list(
            self._get("/api/traces", service=service, limit=limit, lookback=lookback).get("data")
            or []
        )

    def trace(self, trace_id: str) -> Any:
        found = self._get(f"/api/traces/{trace_id}").get("data") or []
        return found[0] if found else None
