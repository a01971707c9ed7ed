"""What the Twilio stand-in has received and created, and the faults it was told to inject.

Tests read and steer it in-process through ``TwilioContractServer.contract``; a server in another
process is read and steered the same way over the ``/_contract/`` control API (see
:func:`fleetpipe_dev.twilio.routes.control`).
"""

from __future__ import annotations

import base64
import hmac
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from fleetpipe_dev.twilio.resources import Fault, FaultKind, ReceivedRequest, Resource


class ContractStore:
    """The server's state, independent of HTTP. Thread-safe: the HTTP server is threaded."""

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
        # Set when the server stops, so that requests told to hang let go at once.
        self.stop_event = threading.Event()

    @property
    def auth_token(self) -> str:
        return self._auth_token

    def now(self) -> float:
        return self._clock()

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
        return [r.payload(now, self.settle_s) for r in self.resources(kind)]

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

    # -- what the routes read and write ------------------------------------------------------
    def authorized(self, header: str | None) -> bool:
        """Whether an ``Authorization`` header carries this account's SID and token."""
        if not header or not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return hmac.compare_digest(user, self.account_sid) and hmac.compare_digest(
            password, self._auth_token
        )

    def record(self, request: ReceivedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def take_fault(self, method: str, resource: str) -> Fault | None:
        """The first armed fault matching this request, one use of it consumed."""
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

    def rejection(self, *numbers: str) -> tuple[int, str] | None:
        """The (code, message) a test asked for on the first of ``numbers`` it rejected."""
        with self._lock:
            for number in numbers:
                if number in self._invalid:
                    return self._invalid[number]
        return None

    def add(self, resource: Resource) -> None:
        with self._lock:
            self._resources.append(resource)

    def resources(self, kind: str) -> list[Resource]:
        """The Messages (or Calls) created so far, oldest first."""
        with self._lock:
            return [r for r in self._resources if r.kind == kind]

    def find(self, kind: str, sid: str) -> Resource | None:
        with self._lock:
            return next((r for r in self._resources if r.kind == kind and r.sid == sid), None)
