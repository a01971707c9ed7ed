"""What the Twilio contract speaks of: Messages and Calls, error payloads, recorded requests."""

from __future__ import annotations

import email.utils
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

API = "/2010-04-01"
ResourceKind = Literal["Messages", "Calls"]
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
    kind: ResourceKind
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
