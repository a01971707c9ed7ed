"""Health, readiness and metrics over HTTP: /healthz, /readyz and /metrics on one port."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from fleetpipe.core.metrics import Metrics


class Health:
    """Liveness is a heartbeat from the main loop; readiness is set by the service."""

    def __init__(self, *, liveness_timeout_s: float = 60.0) -> None:
        self._liveness_timeout_s = liveness_timeout_s
        self._last_beat = time.monotonic()
        self._busy_until = 0.0
        self._ready = False
        self._reason = "starting"

    def beat(self) -> None:
        self._last_beat = time.monotonic()

    @contextlib.contextmanager
    def busy(self, within_s: float) -> Iterator[None]:
        """A step the main loop cannot beat through — a state restore, which waits for Kafka
        (a broker back from a restart, a crashed predecessor's transaction timing out) — keeps
        the process alive for up to ``within_s``, the step's own bound; the heartbeat counts
        again from its end. Past the bound it is a stall like any other."""
        self._busy_until = time.monotonic() + within_s
        try:
            yield
        finally:
            self._busy_until = 0.0
            self.beat()

    def set_ready(self, ready: bool, reason: str = "") -> None:
        self._ready = ready
        self._reason = reason

    @property
    def alive(self) -> bool:
        now = time.monotonic()
        return now - self._last_beat < self._liveness_timeout_s or now < self._busy_until

    @property
    def ready(self) -> bool:
        return self._ready and self.alive

    @property
    def reason(self) -> str:
        return self._reason


class HealthServer:
    """Serves the endpoints on a daemon thread; started by ``main()``, never at import."""

    def __init__(self, health: Health, metrics: Metrics, *, host: str, port: int) -> None:
        self.health = health
        self.metrics = metrics
        self._host = host
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._server is not None, "server not started"
        return int(self._server.server_address[1])

    def start(self) -> None:
        health, registry = self.health, self.metrics.registry

        class _Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.startswith("/metrics"):
                    self._reply(200, generate_latest(registry), CONTENT_TYPE_LATEST)
                elif self.path.startswith("/healthz"):
                    ok = health.alive
                    self._reply(200 if ok else 503, b"ok\n" if ok else b"stalled\n")
                elif self.path.startswith("/readyz"):
                    ok = health.ready
                    body = b"ready\n" if ok else f"not ready: {health.reason}\n".encode()
                    self._reply(200 if ok else 503, body)
                else:
                    self._reply(404, b"not found\n")

            def _reply(self, code: int, body: bytes, ctype: str = "text/plain") -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return  # probes every few seconds would drown the service's own logs

        self._server = ThreadingHTTPServer((self._host, self._port), _Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="health-http", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
