"""The webhook receiver the tests run: the dev one (fleetpipe_dev.webhook_receiver), with a
token in its URL's query, which the ledger and the logs must never show."""

from __future__ import annotations

from fleetpipe_dev.webhook_receiver import Received, WebhookTally, signature_ok
from fleetpipe_dev.webhook_receiver import WebhookReceiver as _Receiver

__all__ = ["Received", "WebhookReceiver", "WebhookTally", "signature_ok"]


class WebhookReceiver(_Receiver):
    def __init__(self, key: str) -> None:
        super().__init__(key, path="/hooks/fleetpipe?token=t0ps3cret")
