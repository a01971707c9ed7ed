"""The Twilio contract over HTTP on loopback, in a background thread of this process."""

from __future__ import annotations

import json
import logging
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fleetpipe_dev.twilio import routes
from fleetpipe_dev.twilio.resources import ContractError
from fleetpipe_dev.twilio.store import ContractStore

log = logging.getLogger(__name__)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s - %s", self.address_string(), format % args)

    def _form(self) -> dict[str, list[str]]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        return parse_qs(raw.decode(), keep_blank_values=True)

    def _reply(self, status: int, payload: Any, hang_s: float = 0.0) -> None:
        if hang_s:
            # Hold the answer back so the client times out; stop() cuts the wait short.
            self.server.contract.stop_event.wait(hang_s)
        data = b"" if payload is None else json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timed out) before the answer came

    def _serve(self, method: str) -> None:
        contract = self.server.contract
        path = urlsplit(self.path).path
        if path.startswith("/_contract/"):
            if not contract.authorized(self.headers.get("Authorization")):
                self._reply(401, ContractError(401, 20003, "Authenticate").payload())
                return
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}") if length else {}
            status, payload = routes.control(contract, method, path, body)
            self._reply(status, payload)
            return
        form = self._form() if method == "POST" else {}
        status, payload, hang = routes.handle(
            contract, method, self.path, form, self.headers.get("Authorization")
        )
        self._reply(status, payload, hang)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    contract: ContractStore


class TwilioContractServer:
    """The contract over HTTP on loopback, in a background thread of this process.

    ``contract`` is the :class:`ContractStore` behind it: what tests read and steer.
    """

    def __init__(
        self,
        account_sid: str | None = None,
        auth_token: str | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        settle_s: float = 0.0,
    ) -> None:
        self.contract = ContractStore(
            account_sid or "AC" + secrets.token_hex(16),
            auth_token or secrets.token_hex(16),
            settle_s=settle_s,
        )
        self._host = host
        self._port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def account_sid(self) -> str:
        return self.contract.account_sid

    @property
    def auth_token(self) -> str:
        return self.contract.auth_token

    @property
    def url(self) -> str:
        assert self._server is not None, "the server is not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> TwilioContractServer:
        self.contract.stop_event.clear()
        server = _Server((self._host, self._port), _Handler)
        server.contract = self.contract
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name="twilio-contract", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.contract.stop_event.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def __enter__(self) -> TwilioContractServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
