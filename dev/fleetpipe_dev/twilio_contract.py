"""A local server that speaks Twilio's REST contract, for tests, the demo and the load test.

Twilio's cloud is out of reach here, so the real ``twilio`` SDK is pointed at this server (see
:func:`fleetpipe.notification.provider.twilio_client`). It implements what FleetPipe uses of the
2010-04-01 API, shaped like Twilio's own responses:

* ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` (form: To, From or
  MessagingServiceSid, Body; ``whatsapp:`` addresses) → 201 with an ``SM…`` Message;
* ``GET …/Messages/{Sid}.json`` and ``GET …/Messages.json`` (filters To, From, DateSent,
  ``DateSent<``, ``DateSent>``; newest first; PageSize/Page paging with ``next_page_uri``);
* ``POST …/Calls.json`` (To, From, Twiml or Url) → 201 with a ``CA…`` Call; fetch and list Calls
  (filters To, From, Status);
* HTTP basic auth against the configured account SID and auth token (401, code 20003);
* Twilio's error payloads (``code``, ``message``, ``more_info``, ``status``): 400 with 21211 for an
  invalid 'To' number, 21614 for a number that cannot receive SMS, 21610 for an unsubscribed one,
  and Twilio's magic test numbers (+15005550001 invalid, +15005550009 not mobile, …).

It records every request (inspectable in-process through :class:`TwilioContract`, or over HTTP
under ``/_contract/``) and can be told to fail: the next N requests answer 500 or 429, or hang
past the client's timeout (optionally after creating the resource, the ambiguous case).

``python -m fleetpipe_dev.twilio_contract --port 18080`` runs it on its own; tests start it
in-process with :class:`TwilioContractServer`.
"""

from __future__ import annotations

import argparse
import base64
import email.utils
import hmac
import json
import logging
import os
import re
import secrets
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qs, urlencode, urlsplit

log = logging.getLogger(__name__)

API = "/2010-04-01"
E164_RE = re.compile(r"^\+[1-9][0-9]{6,14}$")
PATH_RE = re.compile(
    r"^/2010-04-01/Accounts/(?P<account>[^/]+)/(?P<resource>Messages|Calls)"
    r"(?:/(?P<sid>[A-Za-z0-9]+))?\.json$"
)
# Twilio's documented magic numbers for test credentials, honoured here too.
MAGIC_TO: dict[str, tuple[int, str]] = {
    "+15005550001": (21211, "Invalid 'To' Phone Number"),
    "+15005550002": (21612, "The 'To' phone number is not currently reachable via SMS"),
    "+15005550003": (21408, "Permission to send an SMS has not been enabled for the region"),
    "+15005550004": (21610, "Attempt to send to unsubscribed recipient"),
    "+15005550009": (21614, "'To' number is not a valid mobile number"),
}
FaultKind = Literal["error", "timeout", "timeout_after_create"]


def more_info(code: int) -> str:
    return f"https://www.twilio.com/docs/errors/{code}"


def rfc2822(t: float | None) -> str | None:
    if t is None:
        return None
    return email.utils.format_datetime(datetime.fromtimestamp(int(t), UTC))


def new_sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


class ContractError(Exception):
    """A Twilio error response: HTTP status, Twilio code and message."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def payload(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "more_info": more_info(self.code),
            "status": self.status,
        }


@dataclass
class ReceivedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    form: dict[str, list[str]]
    authorized: bool
    time: float
    status: int = 0

    def param(self, name: str) -> str | None:
        values = self.form.get(name) or self.query.get(name)
        return values[0] if values else None


@dataclass
class Fault:
    kind: FaultKind
    remaining: int
    status: int = 500
    code: int = 20500
    message: str = "Internal Server Error"
    resource: str | None = None  # "Messages" or "Calls"; None matches every request
    method: str | None = "POST"  # by default only creates fail: lookups keep working
    hang_s: float = 30.0


@dataclass
class Resource:
    kind: Literal["Messages", "Calls"]
    sid: str
    account_sid: str
    to: str
    from_: str
    created: float
    body: str = ""
    twiml: str = ""
    url: str = ""
    status: str = "queued"
    error_code: int | None = None
    error_message: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def payload(self, now: float, settle_s: float, *, created: bool = False) -> dict[str, Any]:
        # The create response always says "queued", as Twilio's does; later reads move on.
        settled = not created and now - self.created >= settle_s
        uri = f"{API}/Accounts/{self.account_sid}/{self.kind}/{self.sid}.json"
        if self.kind == "Messages":
            status = "delivered" if settled and self.status == "queued" else self.status
            return {
                "account_sid": self.account_sid,
                "api_version": "2010-04-01",
                "body": self.body,
                "date_created": rfc2822(self.created),
                "date_sent": rfc2822(self.created) if settled else None,
                "date_updated": rfc2822(self.created),
                "direction": "outbound-api",
                "error_code": self.error_code,
                "error_message": self.error_message,
                "from": self.from_,
                "messaging_service_sid": self.extra.get("MessagingServiceSid"),
                "num_media": "0",
                "num_segments": str(max(1, -(-len(self.body) // 153))),
                "price": None,
                "price_unit": "USD",
                "sid": self.sid,
                "status": status,
                "subresource_uris": {"media": uri.replace(".json", "/Media.json")},
                "to": self.to,
                "uri": uri,
            }
        status = "completed" if settled and self.status == "queued" else self.status
        return {
            "account_sid": self.account_sid,
            "answered_by": None,
            "api_version": "2010-04-01",
            "caller_name": None,
            "date_created": rfc2822(self.created),
            "date_updated": rfc2822(self.created),
            "direction": "outbound-api",
            "duration": "15" if settled else None,
            "end_time": rfc2822(self.created + 15) if settled else None,
            "forwarded_from": None,
            "from": self.from_,
            "from_formatted": self.from_,
            "group_sid": None,
            "parent_call_sid": None,
            "phone_number_sid": None,
            "price": None,
            "price_unit": "USD",
            "sid": self.sid,
            "start_time": rfc2822(self.created) if settled else None,
            "status": status,
            "subresource_uris": {},
            "to": self.to,
            "to_formatted": self.to,
            "trunk_sid": None,
            "uri": uri,
            "queue_time": "0",
        }


class TwilioContract:
    """The server's state and logic, independent of HTTP. Thread-safe."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        settle_s: float = 0.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.account_sid = account_sid
        self._auth_token = auth_token
        # A resource reads "queued" until this many seconds after creation, then
        # "delivered" (Messages) or "completed" (Calls), with date_sent/start_time set.
        self.settle_s = settle_s
        self._clock = clock
        self._lock = threading.Lock()
        self._requests: list[ReceivedRequest] = []
        self._resources: list[Resource] = []
        self._faults: list[Fault] = []
        self._invalid: dict[str, tuple[int, str]] = {}
        self.stop_event = threading.Event()

    # -- what tests look at ------------------------------------------------------------------
    @property
    def requests(self) -> list[ReceivedRequest]:
        with self._lock:
            return list(self._requests)

    def creates(self, resource: str = "Messages") -> list[ReceivedRequest]:
        """Every POST to create a Message (or Call), failed ones included."""
        return [
            r
            for r in self.requests
            if r.method == "POST" and r.path.endswith(f"/{resource}.json") and r.authorized
        ]

    def messages(self) -> list[dict[str, Any]]:
        return self._listed("Messages")

    def calls(self) -> list[dict[str, Any]]:
        return self._listed("Calls")

    def _listed(self, kind: str) -> list[dict[str, Any]]:
        now = self._clock()
        with self._lock:
            return [r.payload(now, self.settle_s) for r in self._resources if r.kind == kind]

    # -- how tests make it misbehave --------------------------------------------------------
    def fail_next(
        self,
        count: int = 1,
        *,
        status: int = 500,
        kind: FaultKind = "error",
        code: int | None = None,
        message: str | None = None,
        resource: str | None = None,
        method: str | None = "POST",
        hang_s: float = 30.0,
    ) -> None:
        """The next ``count`` matching requests fail: an error status, or a hang (timeout)."""
        default_code, default_message = {
            429: (20429, "Too Many Requests"),
            500: (20500, "Internal Server Error"),
            503: (20503, "Service Unavailable"),
        }.get(status, (status, HTTPStatus(status).phrase))
        with self._lock:
            self._faults.append(
                Fault(
                    kind=kind,
                    remaining=count,
                    status=status,
                    code=code or default_code,
                    message=message or default_message,
                    resource=resource,
                    method=method,
                    hang_s=hang_s,
                )
            )

    def reject_number(self, number: str, *, code: int = 21211, message: str = "") -> None:
        """Answer 400 with ``code`` for any message or call to ``number``."""
        with self._lock:
            self._invalid[number] = (code, message or f"Invalid 'To' Phone Number: {number}")

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self._resources.clear()
            self._faults.clear()
            self._invalid.clear()

    # -- the contract ------------------------------------------------------------------------
    def authorized(self, header: str | None) -> bool:
        if not header or not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return hmac.compare_digest(user, self.account_sid) and hmac.compare_digest(
            password, self._auth_token
        )

    def handle(
        self,
        method: str,
        target: str,
        form: dict[str, list[str]],
        auth_header: str | None,
    ) -> tuple[int, dict[str, Any], float]:
        """Answer one request: (HTTP status, JSON body, seconds to hang before answering)."""
        parts = urlsplit(target)
        query = parse_qs(parts.query, keep_blank_values=True)
        request = ReceivedRequest(
            method, parts.path, query, form, self.authorized(auth_header), self._clock()
        )
        with self._lock:
            self._requests.append(request)
        try:
            status, payload, hang = self._dispatch(request)
        except ContractError as exc:
            status, payload, hang = exc.status, exc.payload(), 0.0
        request.status = status
        return status, payload, hang

    def _dispatch(self, req: ReceivedRequest) -> tuple[int, dict[str, Any], float]:
        if not req.authorized:
            raise ContractError(401, 20003, "Authenticate")
        match = PATH_RE.match(req.path)
        if match is None:
            raise ContractError(404, 20404, f"The requested resource {req.path} was not found")
        if match["account"] != self.account_sid:
            raise ContractError(404, 20404, f"The requested resource {req.path} was not found")
        resource, sid = match["resource"], match["sid"]
        fault = self._take_fault(req.method, resource)
        if fault is not None and fault.kind == "error":
            raise ContractError(fault.status, fault.code, fault.message)
        if fault is not None and fault.kind == "timeout":
            return 504, ContractError(504, 20504, "Gateway Timeout").payload(), fault.hang_s
        if req.method == "POST" and sid is None:
            created = self._create(resource, req)  # type: ignore[arg-type]
            hang = fault.hang_s if fault is not None else 0.0
            return 201, created.payload(self._clock(), self.settle_s, created=True), hang
        if req.method == "GET" and sid is not None:
            return 200, self._fetch(resource, sid, req.path), 0.0
        if req.method == "GET":
            return 200, self._list(resource, req), 0.0
        raise ContractError(405, 20004, "Method not allowed")

    def _take_fault(self, method: str, resource: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.remaining <= 0:
                    continue
                if fault.resource not in (None, resource):
                    continue
                if fault.method not in (None, method):
                    continue
                fault.remaining -= 1
                return fault
        return None

    def _create(self, kind: Literal["Messages", "Calls"], req: ReceivedRequest) -> Resource:
        to = (req.param("To") or "").strip()
        from_ = (req.param("From") or "").strip()
        if kind == "Messages":
            service = req.param("MessagingServiceSid")
            body = req.param("Body") or ""
            if not to:
                raise ContractError(400, 21604, "A 'To' phone number is required.")
            if not from_ and not service:
                raise ContractError(400, 21603, "A 'From' phone number is required.")
            if not body and not req.param("MediaUrl") and not req.param("ContentSid"):
                raise ContractError(400, 21602, "Message body is required.")
            if len(body) > 1600:
                raise ContractError(
                    400, 21617, "The concatenated message body exceeds the 1600 character limit."
                )
            if to.startswith("whatsapp:") != from_.startswith("whatsapp:") and not service:
                raise ContractError(
                    400, 63007, "Twilio could not find a Channel with the specified From address"
                )
            self._check_number(to)
            resource = Resource(
                kind, new_sid("SM"), self.account_sid, to, from_, self._clock(), body=body
            )
            if service:
                resource.extra["MessagingServiceSid"] = service
        else:
            twiml = req.param("Twiml") or ""
            url = req.param("Url") or ""
            if not to:
                raise ContractError(400, 21201, "No 'To' number is specified")
            if not from_:
                raise ContractError(400, 21213, "No 'From' number is specified")
            if not twiml and not url and not req.param("ApplicationSid"):
                raise ContractError(400, 21205, "Url parameter is required.")
            if twiml:
                try:
                    ET.fromstring(twiml)  # noqa: S314 - our own test traffic, loopback only
                except ET.ParseError as exc:
                    raise ContractError(400, 12100, f"Document parse failure: {exc}") from exc
            self._check_number(to)
            resource = Resource(
                kind,
                new_sid("CA"),
                self.account_sid,
                to,
                from_,
                self._clock(),
                twiml=twiml,
                url=url,
            )
        with self._lock:
            self._resources.append(resource)
        return resource

    def _check_number(self, to: str) -> None:
        number = to.removeprefix("whatsapp:")
        with self._lock:
            rejected = self._invalid.get(number) or self._invalid.get(to)
        if rejected is None:
            rejected = MAGIC_TO.get(number)
        if rejected is None and not E164_RE.match(number):
            rejected = (21211, f"Invalid 'To' Phone Number: {number}")
        if rejected is not None:
            code, message = rejected
            raise ContractError(400, code, message)

    def _fetch(self, kind: str, sid: str, path: str) -> dict[str, Any]:
        with self._lock:
            found = next((r for r in self._resources if r.kind == kind and r.sid == sid), None)
        if found is None:
            raise ContractError(404, 20404, f"The requested resource {path} was not found")
        return found.payload(self._clock(), self.settle_s)

    def _list(self, kind: str, req: ReceivedRequest) -> dict[str, Any]:
        now = self._clock()
        with self._lock:
            rows = [r for r in self._resources if r.kind == kind]
        rows.sort(key=lambda r: r.created, reverse=True)  # Twilio lists newest first
        payloads = [r.payload(now, self.settle_s) for r in rows]
        to, from_ = req.param("To"), req.param("From")
        if to:
            payloads = [p for p in payloads if p["to"] == to]
        if from_:
            payloads = [p for p in payloads if p["from"] == from_]
        if kind == "Messages":
            for name, op in (("DateSent", "="), ("DateSent<", "<="), ("DateSent>", ">=")):
                value = req.query.get(name)
                if value:
                    payloads = [p for p in payloads if _date_matches(p["date_sent"], op, value[0])]
        elif req.param("Status"):
            payloads = [p for p in payloads if p["status"] == req.param("Status")]
        try:
            page_size = max(1, min(1000, int(req.param("PageSize") or 50)))
            page = max(0, int(req.param("Page") or 0))
        except ValueError as exc:
            raise ContractError(400, 20001, f"Invalid paging parameter: {exc}") from exc
        start = page * page_size
        chunk = payloads[start : start + page_size]
        base = f"{API}/Accounts/{self.account_sid}/{kind}.json"
        filters = {
            k: v[0] for k, v in req.query.items() if k not in {"Page", "PageSize", "PageToken"}
        }

        def page_uri(n: int) -> str:
            params = {**filters, "PageSize": str(page_size), "Page": str(n)}
            if n > 0:
                params["PageToken"] = f"PA{n}"
            return f"{base}?{urlencode(params)}"

        has_next = start + page_size < len(payloads)
        return {
            kind.lower(): chunk,
            "end": start + len(chunk) - 1 if chunk else start,
            "first_page_uri": page_uri(0),
            "next_page_uri": page_uri(page + 1) if has_next else None,
            "page": page,
            "page_size": page_size,
            "previous_page_uri": page_uri(page - 1) if page > 0 else None,
            "start": start,
            "uri": page_uri(page),
        }

    # -- the control API, for a server in another process -----------------------------------
    def control(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        if method == "GET" and path == "/_contract/requests":
            return 200, [asdict(r) for r in self.requests]
        if method == "GET" and path == "/_contract/messages":
            return 200, self.messages()
        if method == "GET" and path == "/_contract/calls":
            return 200, self.calls()
        if method == "POST" and path == "/_contract/faults":
            self.fail_next(
                int(body.get("count", 1)),
                status=int(body.get("status", 500)),
                kind=body.get("kind", "error"),
                resource=body.get("resource"),
                method=body.get("method", "POST"),
                hang_s=float(body.get("hang_s", 30.0)),
            )
            return 204, None
        if method == "POST" and path == "/_contract/rejected-numbers":
            for number in body.get("numbers", []):
                self.reject_number(str(number), code=int(body.get("code", 21211)))
            return 204, None
        if method == "POST" and path == "/_contract/reset":
            self.reset()
            return 204, None
        return 404, {"message": f"no control endpoint {method} {path}"}


def _date_matches(date_sent: str | None, op: str, value: str) -> bool:
    """Twilio's DateSent filters: a date compares by day, a date-time by the second."""
    if date_sent is None:
        return False  # not sent yet: Twilio's DateSent filters do not see queued messages
    parsed = email.utils.parsedate_to_datetime(date_sent)
    try:
        if len(value) == 10:
            sent: date | datetime = parsed.date()
            bound: date | datetime = date.fromisoformat(value)
        else:
            sent, bound = parsed, datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ContractError(400, 20001, f"Invalid DateSent value {value!r}") from exc
    if op == "=":
        return sent == bound
    if op == "<=":
        return sent <= bound
    return sent >= bound


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
            status, payload = contract.control(method, path, body)
            self._reply(status, payload)
            return
        form = self._form() if method == "POST" else {}
        status, payload, hang = contract.handle(
            method, self.path, form, self.headers.get("Authorization")
        )
        self._reply(status, payload, hang)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    contract: TwilioContract


class TwilioContractServer:
    """The contract over HTTP on loopback, in a background thread of this process."""

    def __init__(
        self,
        account_sid: str | None = None,
        auth_token: str | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        settle_s: float = 0.0,
    ) -> None:
        self.contract = TwilioContract(
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
        return self.contract._auth_token

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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m fleetpipe_dev.twilio_contract",
        description="A local server speaking Twilio's REST contract (Messages, Calls).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18080)
    parser.add_argument("--settle-s", type=float, default=0.0)
    args = parser.parse_args(argv)
    # Credentials come from the environment, like the service's: never from the command line,
    # where any user of the machine could read them.
    account_sid = os.environ.get("FLEET_TWILIO__ACCOUNT_SID") or os.environ.get(
        "TWILIO_ACCOUNT_SID"
    )
    auth_token = os.environ.get("FLEET_TWILIO__AUTH_TOKEN") or os.environ.get("TWILIO_AUTH_TOKEN")
    if not account_sid or not auth_token:
        parser.error("set FLEET_TWILIO__ACCOUNT_SID and FLEET_TWILIO__AUTH_TOKEN")
    server = TwilioContractServer(
        account_sid, auth_token, host=args.host, port=args.port, settle_s=args.settle_s
    ).start()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    log.info("Twilio contract server on %s (account %s)", server.url, server.account_sid)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
