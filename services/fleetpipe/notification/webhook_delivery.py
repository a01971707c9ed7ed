"""One webhook delivery, under its ledger row: count the attempt, POST, settle.

The ledger row is written (PENDING, with its ``delivery_id``) before the first POST, and every
POST of the delivery carries that id as its ``Idempotency-Key``. Unlike Twilio, a receiver
cannot be asked whether a request arrived, so a row found PENDING with an attempt counted — a
process died between a POST and the ledger's record, or a POST timed out — is sent again, with
the same key and the same body. The guarantee, stated in the README: at most one idempotency
key per (alert, phase, sink), every POST of it signed; a receiver that keeps the keys it has
processed acts on each alert phase exactly once.

A sink that stays down is given up on after the retry budget: the row is settled FAILED with
the last error, and the batch goes on, so a broken sink never holds up a driver's message.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)

from fleetpipe.notification.ledger import Entry, Status
from fleetpipe.notification.payload import webhook_body
from fleetpipe.notification.provider import ProviderError, Sent
from fleetpipe.notification.recipients import Recipients, WebhookSink
from fleetpipe.notification.redact import origin
from fleetpipe.pb.v1 import alert_pb2

log = logging.getLogger(__name__)


class WebhookPort(Protocol):
    def post(self, sink: WebhookSink, body: bytes, *, delivery_id: str) -> Sent: ...


class AttemptLedger(Protocol):
    def count_attempt(self, entry: Entry) -> Entry: ...
    def settle(self, entry: Entry) -> Entry: ...


@dataclass(frozen=True)
class WebhookRetry:
    attempts: int = 4
    initial_backoff_s: float = 0.5
    max_backoff_s: float = 10.0
    # Bounds one delivery's time in retries: a sink that is down costs each alert this much.
    deadline_s: float = 20.0


class WebhookDelivery:
    def __init__(
        self,
        *,
        recipients: Recipients,
        gateway: WebhookPort,
        ledger: AttemptLedger,
        retry: WebhookRetry,
        on_call: Callable[[str], None],
        sleep: Callable[[float], None] = time.sleep,
        hold_s: float = 0.0,
    ) -> None:
        self._recipients = recipients
        self._gateway = gateway
        self._ledger = ledger
        self._retry = retry
        self._on_call = on_call  # counts each POST by its result
        self._sleep = sleep
        self._hold_s = hold_s

    def deliver(self, alert: alert_pb2.Alert, entry: Entry) -> Entry:
        """Send one PENDING webhook delivery and settle it; the caller holds its lock."""
        sink = self._recipients.webhook(entry.recipient)
        name = "/".join(entry.key)
        if sink is None:
            return self._ledger.settle(
                entry.settled(
                    Status.FAILED,
                    error_code="no_sink",
                    error_message=f"no webhook sink {entry.recipient} is configured any more",
                )
            )
        if entry.attempts > 0:
            log.info(
                "delivery %s may have reached %s before a restart: sending it again with the "
                "same Idempotency-Key",
                name,
                origin(sink.url),
            )
        body = webhook_body(alert, entry.phase, sink=sink.name, delivery_id=entry.delivery_id)
        r = self._retry
        retrying = Retrying(
            stop=stop_after_attempt(r.attempts) | stop_after_delay(r.deadline_s),
            wait=wait_exponential_jitter(
                multiplier=r.initial_backoff_s, max=r.max_backoff_s, jitter=r.initial_backoff_s
            ),
            retry=retry_if_exception(lambda e: isinstance(e, ProviderError) and e.transient),
            reraise=True,
            sleep=self._sleep,
            before_sleep=lambda state: log.warning(
                "delivery %s attempt %d failed, retrying: %s",
                name,
                state.attempt_number,
                state.outcome.exception() if state.outcome else "",
            ),
        )
        try:
            for attempt in retrying:
                with attempt:
                    entry = self._ledger.count_attempt(entry)
                    try:
                        self._gateway.post(sink, body, delivery_id=entry.delivery_id)
                    except ProviderError as exc:
                        self._on_call(exc.code or "error")
                        raise
                    self._on_call("ok")
        except ProviderError as exc:
            why = exc.message if not exc.transient else f"gave up after retries: {exc.message}"
            log.warning("delivery %s failed: %s", name, why)
            return self._ledger.settle(
                entry.settled(Status.FAILED, error_code=exc.code, error_message=why)
            )
        if self._hold_s:
            # Fault injection: the receiver has the request, the ledger does not know yet.
            self._sleep(self._hold_s)
        return self._ledger.settle(entry.settled(Status.SENT))
