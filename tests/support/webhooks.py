"""A webhook receiver on loopback, as a sink's owner would write one.

It checks every request's signature on its own — HMAC-SHA256 of ``<timestamp>.<body>`` with
its key, written here from the documented scheme rather than with the code under test — refuses
a bad or stale one with 401, and acts once per ``Idempotency-Key``: a repeated key is answered
200 and not processed again. It records every request, so a test sees both what was sent and
what was processed. Faults: the next N requests answered with a status.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

TOLERANCE_S = 300


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    signature_ok: bool
    status: int

    @property
    def key(self) -> str:
        return self.headers.get("idempotency-key", "")

    def document(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


@dataclass
class _State:
    key: bytes
    received: list[Received] = field(default_factory=list)
    processed: dict[str, dict[str, Any]] = field(default_factory=dict)
    faults: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def signature_ok(key: bytes, headers: dict[str, str], body: bytes, now_s: float) -> bool:
    timestamp = headers.get("x-fleetpipe-timestamp", "")
    given = headers.get("x-fleetpipe-signature", "")
    if not timestamp.isdigit() or abs(now_s - int(timestamp)) > TOLERANCE_S:
        return False
    expected = hmac.new(key, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(f"sha256={expected}", given)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        headers = {k.lower(): v for k, v in self.headers.items()}
        state = self.server.state
        ok = signature_ok(state.key, headers, body, time.time())
        with state.lock:
            status = state.faults.pop(0) if state.faults else (200 if ok else 401)
            if status == 200:
                key = headers.get("idempotency-key", "")
                # Once per key: a redelivery is acknowledged, not processed again.
                state.processed.setdefault(key, json.loads(body))
            state.received.append(Received(self.path, headers, body, ok, status))
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"ok" if status == 200 else b"refused")

    def log_message(self, format: str, *args: Any) -> None:
        return  # the test reads what it needs from the recorded requests


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: _State


class WebhookReceiver:
    def __init__(self, key: str) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.state = _State(key.encode())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/hooks/fleetpipe?token=t0ps3cret"

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def fail_next(self, n: int, *, status: int = 500) -> None:
        with self._server.state.lock:
            self._server.state.faults.extend([status] * n)

    def received(self) -> list[Received]:
        with self._server.state.lock:
            return list(self._server.state.received)

    def processed(self) -> dict[str, dict[str, Any]]:
        """Idempotency key → the body it was processed with (once each)."""
        with self._server.state.lock:
            return dict(self._server.state.processed)
