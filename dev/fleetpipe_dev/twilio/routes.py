"""Twilio's REST contract, and the ``/_contract/`` control API, independent of HTTP.

:func:`handle` answers one request to the 2010-04-01 API from the state in a
:class:`~fleetpipe_dev.twilio.store.ContractStore`; :func:`control` lets a test in another
process read and steer that state.
"""

from __future__ import annotations

import email.utils
import re
import xml.etree.ElementTree as ET
from dataclasses import asdict
from datetime import date, datetime
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from fleetpipe_dev.twilio.resources import (
    API,
    ContractError,
    ReceivedRequest,
    Resource,
    ResourceKind,
    new_sid,
)
from fleetpipe_dev.twilio.store import ContractStore

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


def handle(
    store: ContractStore,
    method: str,
    target: str,
    form: dict[str, list[str]],
    auth_header: str | None,
) -> tuple[int, dict[str, Any], float]:
    """Answer one request: (HTTP status, JSON body, seconds to hang before answering)."""
    parts = urlsplit(target)
    query = parse_qs(parts.query, keep_blank_values=True)
    request = ReceivedRequest(
        method, parts.path, query, form, store.authorized(auth_header), store.now()
    )
    store.record(request)
    try:
        status, payload, hang = _dispatch(store, request)
    except ContractError as exc:
        status, payload, hang = exc.status, exc.payload(), 0.0
    request.status = status
    return status, payload, hang


def _dispatch(store: ContractStore, req: ReceivedRequest) -> tuple[int, dict[str, Any], float]:
    if not req.authorized:
        raise ContractError(401, 20003, "Authenticate")
    match = PATH_RE.match(req.path)
    if match is None:
        raise ContractError(404, 20404, f"The requested resource {req.path} was not found")
    if match["account"] != store.account_sid:
        raise ContractError(404, 20404, f"The requested resource {req.path} was not found")
    resource: ResourceKind = "Messages" if match["resource"] == "Messages" else "Calls"
    sid = match["sid"]
    fault = store.take_fault(req.method, resource)
    if fault is not None and fault.kind == "error":
        raise ContractError(fault.status, fault.code, fault.message)
    if fault is not None and fault.kind == "timeout":
        return 504, ContractError(504, 20504, "Gateway Timeout").payload(), fault.hang_s
    if req.method == "POST" and sid is None:
        created = (
            _create_message(store, req) if resource == "Messages" else _create_call(store, req)
        )
        store.add(created)
        # A "timeout_after_create" fault hangs only now: the resource exists, the client
        # never hears so, the ambiguous case a retrying sender must survive.
        hang = fault.hang_s if fault is not None else 0.0
        return 201, created.payload(store.now(), store.settle_s, created=True), hang
    if req.method == "GET" and sid is not None:
        return 200, _fetch(store, resource, sid, req.path), 0.0
    if req.method == "GET":
        return 200, _list(store, resource, req), 0.0
    raise ContractError(405, 20004, "Method not allowed")


def _create_message(store: ContractStore, req: ReceivedRequest) -> Resource:
    to = (req.param("To") or "").strip()
    from_ = (req.param("From") or "").strip()
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
    _check_number(store, to)
    message = Resource(
        "Messages", new_sid("SM"), store.account_sid, to, from_, store.now(), body=body
    )
    if service:
        message.extra["MessagingServiceSid"] = service
    return message


def _create_call(store: ContractStore, req: ReceivedRequest) -> Resource:
    to = (req.param("To") or "").strip()
    from_ = (req.param("From") or "").strip()
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
    _check_number(store, to)
    return Resource(
        "Calls",
        new_sid("CA"),
        store.account_sid,
        to,
        from_,
        store.now(),
        twiml=twiml,
        url=url,
    )


def _check_number(store: ContractStore, to: str) -> None:
    number = to.removeprefix("whatsapp:")
    rejected = store.rejection(number, to)
    if rejected is None:
        rejected = MAGIC_TO.get(number)
    if rejected is None and not E164_RE.match(number):
        rejected = (21211, f"Invalid 'To' Phone Number: {number}")
    if rejected is not None:
        code, message = rejected
        raise ContractError(400, code, message)


def _fetch(store: ContractStore, kind: str, sid: str, path: str) -> dict[str, Any]:
    found = store.find(kind, sid)
    if found is None:
        raise ContractError(404, 20404, f"The requested resource {path} was not found")
    return found.payload(store.now(), store.settle_s)


def _list(store: ContractStore, kind: str, req: ReceivedRequest) -> dict[str, Any]:
    now = store.now()
    rows = store.resources(kind)
    rows.sort(key=lambda r: r.created, reverse=True)  # Twilio lists newest first
    payloads = [r.payload(now, store.settle_s) for r in rows]
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
    base = f"{API}/Accounts/{store.account_sid}/{kind}.json"
    filters = {k: v[0] for k, v in req.query.items() if k not in {"Page", "PageSize", "PageToken"}}

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


def control(store: ContractStore, method: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    """The control API, for a test whose server runs in another process."""
    if method == "GET" and path == "/_contract/requests":
        return 200, [asdict(r) for r in store.requests]
    if method == "GET" and path == "/_contract/messages":
        return 200, store.messages()
    if method == "GET" and path == "/_contract/calls":
        return 200, store.calls()
    if method == "POST" and path == "/_contract/faults":
        store.fail_next(
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
            store.reject_number(str(number), code=int(body.get("code", 21211)))
        return 204, None
    if method == "POST" and path == "/_contract/reset":
        store.reset()
        return 204, None
    return 404, {"message": f"no control endpoint {method} {path}"}
