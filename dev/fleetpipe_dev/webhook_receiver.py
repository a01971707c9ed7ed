"""A webhook receiver on loopback, as a sink's owner would write one: the demo's and the tests'.

It checks every request's signature on its own — HMAC-SHA256 of ``<timestamp>.<body>`` with
its key, written here from the documented scheme rather than with the notification service's
signing code, so that a fault there shows as a bad signature — refuses a bad or stale one with
401, and acts once per ``Idempotency-Key``: a repeated key is answered 200 and not processed
again. It records every request, so a caller sees both what was sent and what was processed,
and :meth:`WebhookReceiver.tally` counts them for a summary. Faults: the next N requests
answered with a status.

It serves from a background thread of this process on a free loopback port, like the
Twilio-contract server; :meth:`WebhookReceiver.stop` ends it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

TOLERANCE_S = 300
DEFAULT_PATH = "/hooks/fleetpipe"


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


@dataclass(frozen=True)
class WebhookTally:
    """What the receiver saw: requests, their signatures, and the deliveries it acted on."""

    requests: int
    bad_signatures: int
    processed: int  # distinct idempotency keys acted on
    redelivered: int  # valid requests of a key already processed (answered, not acted on)
    by_rule: dict[str, int]  # processed deliveries per alert rule
    by_severity: dict[str, int]
    by_phase: dict[str, int]
    # The most keys processed for one (alert, phase): 1 when every alert phase arrived once.
    most_per_alert_phase: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "bad_signatures": self.bad_signatures,
            "processed": self.processed,
            "redelivered": self.redelivered,
            "by_rule": self.by_rule,
            "by_severity": self.by_severity,
            "by_phase": self.by_phase,
            "most_per_alert_phase": self.most_per_alert_phase,
        }


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


def _counted(values: Iterable[object]) -> dict[str, int]:
    return dict(sorted(Counter(str(v or "") for v in values).items()))


def _parsed(body: bytes) -> dict[str, Any] | None:
    try:
        document = json.loads(body)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        headers = {k.lower(): v for k, v in self.headers.items()}
        state = self.server.state
        ok = signature_ok(state.key, headers, body, time.time())
        document = _parsed(body) if ok else None
        with state.lock:
            status = state.faults.pop(0) if state.faults else (200 if ok else 401)
            if status == 200 and document is None:
                status = 400  # signed by the sink's key, yet not the documented JSON
            if status == 200 and document is not None:
                key = headers.get("idempotency-key", "")
                # Once per key: a redelivery is acknowledged, not processed again.
                state.processed.setdefault(key, document)
            state.received.append(Received(self.path, headers, body, ok, status))
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"ok" if status == 200 else b"refused")

    def log_message(self, format: str, *args: Any) -> None:
        return  # callers read what they need from the recorded requests


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: _State


class WebhookReceiver:
    """``key`` is the sink's signing secret; it is kept in memory only and never shown."""

    def __init__(self, key: str, *, path: str = DEFAULT_PATH) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.state = _State(key.encode())
        self._path = path
        # A short poll: stop() (the demo's exit, Ctrl-C) waits at most this long.
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="webhook-receiver",
            daemon=True,
        )
        self._stopped = False

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{self._path}"

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the port; what was received stays readable."""
        if self._stopped:
            return
        self._stopped = True
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

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

    def tally(self) -> WebhookTally:
        received, processed = self.received(), self.processed()
        alerts = [d.get("alert", {}) for d in processed.values()]
        per_alert_phase = Counter(
            (str(a.get("alert_id", "")), str(d.get("phase", "")))
            for a, d in zip(alerts, processed.values(), strict=True)
        )
        valid = [r for r in received if r.signature_ok and r.status == 200]
        return WebhookTally(
            requests=len(received),
            bad_signatures=sum(not r.signature_ok for r in received),
            processed=len(processed),
            redelivered=len(valid) - len(processed),
            by_rule=_counted(a.get("rule") for a in alerts),
            by_severity=_counted(a.get("severity") for a in alerts),
            by_phase=_counted(d.get("phase") for d in processed.values()),
            most_per_alert_phase=max(per_alert_phase.values(), default=0),
        )
