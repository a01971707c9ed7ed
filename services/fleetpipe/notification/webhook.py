"""Webhook sinks over HTTP (the standard library's urllib): the only module that calls them.

One attempt per :meth:`WebhookGateway.post`; the retries are the delivery's (tenacity). What an
answer means is decided once, here:

* 2xx — delivered;
* 429, 5xx, timeouts, refused or broken connections — transient, retried with backoff, then
  recorded as failed so that a sink that is down never holds up the other deliveries;
* every other 4xx — permanent, recorded at once (401 and 403 usually mean the receiver does
  not accept our signature: the sink's secret differs from the receiver's);
* 3xx — permanent too: a signed POST is never followed to another address.

The signing key never leaves this module's headers: it is not logged, and the error messages
name the sink and its URL's origin only.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import IO, Any

from pydantic import SecretStr

from fleetpipe.notification.provider import ProviderError, Sent
from fleetpipe.notification.recipients import WebhookSink
from fleetpipe.notification.redact import origin
from fleetpipe.notification.signing import signed_headers

USER_AGENT = "FleetPipe-Webhook/1"
_DETAIL_BYTES = 300


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:
        return None  # urllib then raises the 3xx as an HTTPError


def _detail(exc: urllib.error.HTTPError) -> str:
    try:
        text = exc.read(_DETAIL_BYTES).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    return f": {text}" if text else ""


def classify_status(sink: WebhookSink, status: int, detail: str = "") -> ProviderError:
    where = f"webhook {sink.name} ({origin(sink.url)})"
    code = str(status)
    if status == 429:
        return ProviderError(
            f"{where} asked us to slow down (429){detail}", code=code, status=status, transient=True
        )
    if status >= 500:
        return ProviderError(
            f"{where} answered {status}{detail}",
            code=code,
            status=status,
            transient=True,
            ambiguous=True,
        )
    if status in (401, 403):
        return ProviderError(
            f"{where} refused the request ({status}): check that the sink's signing secret is "
            f"the receiver's{detail}",
            code=code,
            status=status,
            transient=False,
        )
    if 300 <= status < 400:
        return ProviderError(
            f"{where} redirected ({status}); a signed POST is not followed",
            code=code,
            status=status,
            transient=False,
        )
    return ProviderError(
        f"{where} refused the delivery ({status}){detail}",
        code=code,
        status=status,
        transient=False,
    )


class WebhookGateway:
    """POSTs signed JSON to the sinks; ``secrets`` maps a sink's name to its signing key."""

    def __init__(
        self, secrets: Mapping[str, SecretStr], *, clock: Callable[[], float] = time.time
    ) -> None:
        self._secrets = dict(secrets)
        self._clock = clock
        # No proxy from the environment (a sink is addressed as configured) and no redirects.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())

    def post(self, sink: WebhookSink, body: bytes, *, delivery_id: str) -> Sent:
        secret = self._secrets.get(sink.name)
        if secret is None or not secret.get_secret_value():
            # Settings refuse this at start; a sink added without a restart cannot get here.
            raise ProviderError(
                f"webhook {sink.name} has no signing secret", code="no_secret", transient=False
            )
        headers = signed_headers(
            secret.get_secret_value().encode(), body, delivery_id=delivery_id, now_s=self._clock()
        )
        headers["User-Agent"] = USER_AGENT
        # The sink's URL is http(s) only (recipients.URL_PATTERN, checked by the API server too).
        request = urllib.request.Request(  # noqa: S310
            sink.url, data=body, headers=headers, method="POST"
        )
        where = f"webhook {sink.name} ({origin(sink.url)})"
        try:
            with self._opener.open(request, timeout=sink.timeout_s) as response:
                status = int(response.status)
                response.read(_DETAIL_BYTES)
        except urllib.error.HTTPError as exc:
            raise classify_status(sink, exc.code, _detail(exc)) from exc
        except TimeoutError as exc:
            raise ProviderError(
                f"{where} did not answer within {sink.timeout_s:g}s",
                code="timeout",
                transient=True,
                ambiguous=True,
            ) from exc
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                raise ProviderError(
                    f"{where} did not answer within {sink.timeout_s:g}s",
                    code="timeout",
                    transient=True,
                    ambiguous=True,
                ) from exc
            raise ProviderError(
                f"{where} is unreachable: {exc.reason}", code="unreachable", transient=True
            ) from exc
        except OSError as exc:  # a connection reset or broken while the answer was read
            raise ProviderError(
                f"{where}: the connection broke: {exc}",
                code="connection",
                transient=True,
                ambiguous=True,
            ) from exc
        if not 200 <= status < 300:
            raise classify_status(sink, status)
        return Sent(sid="", status=str(status))
