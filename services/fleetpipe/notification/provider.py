"""Twilio, through the real ``twilio`` SDK: the only module of the service that talks to it.

The SDK is pointed at another base URL (the local contract server in tests and the demo) by an
HTTP client that rewrites the scheme and host of every ``*.twilio.com`` URL it is asked to fetch,
paging links included; everything else — form encoding, auth, error parsing — stays the SDK's.

Failures are classified once, here:

* 400 — the request itself is wrong for this recipient (21211 invalid number, 21614 not a
  mobile, 21610 unsubscribed…): permanent, recorded, never retried;
* 429, 5xx, timeouts and connection errors: transient, retried with backoff; a 5xx, a timeout or
  a broken connection is also *ambiguous* — Twilio may have accepted the request — so the retry
  looks the delivery up before sending again;
* 401/403/404 mean our credentials or account are wrong: not the recipient's fault, so transient
  too (the alerts wait in Kafka until someone fixes the Secret) rather than mass-failing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from fleetpipe.core.errors import FleetPipeError
from fleetpipe.notification.routing import Channel

log = logging.getLogger(__name__)


class ProviderError(FleetPipeError):
    def __init__(
        self,
        message: str,
        *,
        code: str = "",
        status: int = 0,
        transient: bool,
        ambiguous: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.transient = transient
        self.ambiguous = ambiguous


def classify(exc: Exception) -> ProviderError:
    """Turn what the SDK or the HTTP layer raised into a :class:`ProviderError`."""
    if isinstance(exc, TwilioRestException):
        status = int(exc.status)
        code = str(exc.code or status)
        message = str(exc.msg or "")
        if status == 429:
            return ProviderError(message, code=code, status=status, transient=True)
        if status >= 500:
            return ProviderError(message, code=code, status=status, transient=True, ambiguous=True)
        if status in (401, 403, 404):
            return ProviderError(
                f"Twilio refused our credentials or account ({code}): {message}",
                code=code,
                status=status,
                transient=True,
            )
        return ProviderError(message, code=code, status=status, transient=False)
    if isinstance(exc, requests.Timeout):
        return ProviderError(f"timed out: {exc}", code="timeout", transient=True, ambiguous=True)
    if isinstance(exc, requests.RequestException):
        return ProviderError(
            f"connection failed: {exc}", code="connection", transient=True, ambiguous=True
        )
    if isinstance(exc, TwilioException):
        return ProviderError(str(exc), code="twilio", transient=True, ambiguous=True)
    raise exc


class RebasedHttpClient(TwilioHttpClient):  # type: ignore[misc]
    """Sends every request for ``https://<product>.twilio.com/…`` to ``base_url`` instead."""

    def __init__(self, base_url: str, *, timeout: float) -> None:
        super().__init__(timeout=timeout, logger=logging.getLogger("twilio.http_client"))
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"twilio.api_base_url {base_url!r} is not an http(s) URL")
        self._scheme, self._netloc = parts.scheme, parts.netloc
        if self.session is not None:
            # A local endpoint must not go through a proxy from the environment.
            self.session.trust_env = False

    def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        parts = urlsplit(url)
        if parts.hostname and parts.hostname.endswith("twilio.com"):
            url = urlunsplit((self._scheme, self._netloc, parts.path, parts.query, ""))
        response: Response = super().request(
            method,
            url,
            params=params,
            data=data,
            headers=headers,
            auth=auth,
            timeout=timeout,
            allow_redirects=allow_redirects,
        )
        return response


def twilio_client(
    account_sid: str, auth_token: str, *, api_base_url: str | None, timeout_s: float
) -> Client:
    http_client = (
        RebasedHttpClient(api_base_url, timeout=timeout_s)
        if api_base_url
        else TwilioHttpClient(timeout=timeout_s)
    )
    return Client(account_sid, auth_token, http_client=http_client)


@dataclass(frozen=True, slots=True)
class Sent:
    sid: str
    status: str


class TwilioGateway:
    """Send SMS / WhatsApp messages and voice calls; find them again after a crash."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def send(self, channel: Channel, to: str, from_: str, content: str) -> Sent:
        """One attempt. ``content`` is the text, or the TwiML of a call."""
        try:
            if channel is Channel.VOICE:
                call = self._client.calls.create(to=to, from_=from_, twiml=content)
                return Sent(str(call.sid), str(call.status))
            message = self._client.messages.create(to=to, from_=from_, body=content)
            return Sent(str(message.sid), str(message.status))
        except Exception as exc:  # classify() re-raises what it does not know
            raise classify(exc) from exc

    def find(
        self,
        channel: Channel,
        *,
        to: str,
        from_: str,
        reference: str,
        since: datetime,
        exclude: set[str],
        scan_limit: int,
    ) -> Sent | None:
        """A message or call that an earlier attempt may have created, or None.

        Messages carry the delivery's reference in their body, so a message matches exactly.
        A call has nothing of ours that its resource echoes back, so the earliest call to the
        same number from the same caller created since ``since`` and not already claimed by
        another ledger row is taken as ours. Twilio lists newest first; the scan stops at the
        first resource older than ``since``. DateSent filters are not used on purpose: a
        message still queued has no date_sent and would be missed.
        """
        try:
            if channel is Channel.VOICE:
                candidates = []
                for call in self._client.calls.stream(
                    to=to, from_=from_, page_size=50, limit=scan_limit
                ):
                    if _created(call) < since:
                        break
                    if str(call.sid) not in exclude:
                        candidates.append(call)
                if not candidates:
                    return None
                first = candidates[-1]  # the oldest: the list is newest first
                return Sent(str(first.sid), str(first.status))
            for message in self._client.messages.stream(
                to=to, from_=from_, page_size=50, limit=scan_limit
            ):
                if _created(message) < since:
                    break
                if reference in str(message.body or ""):
                    return Sent(str(message.sid), str(message.status))
            return None
        except Exception as exc:  # classify() re-raises what it does not know
            raise classify(exc) from exc


def _created(resource: Any) -> datetime:
    created = resource.date_created
    if created is None:
        # Not dated yet: as new as it gets, so it is never what stops the scan.
        return datetime.max.replace(tzinfo=UTC)
    return created  # type: ignore[no-any-return]


def since_for(created_at: datetime, skew_s: float) -> datetime:
    return created_at - timedelta(seconds=skew_s)
