"""How a webhook delivery is signed, and how a receiver checks it. Pure.

Every request carries three headers:

* ``X-FleetPipe-Timestamp``: Unix seconds when the request was signed;
* ``X-FleetPipe-Signature``: ``sha256=`` and the hex HMAC-SHA256, keyed with the sink's secret,
  of ``<timestamp>.<body>`` (the timestamp, a full stop, then the body's bytes as sent);
* ``Idempotency-Key``: the delivery's id in the ledger, also the body's ``delivery_id``.

A receiver recomputes the HMAC over the raw body, compares in constant time and refuses a
timestamp further than a few minutes from its clock: the timestamp is inside the signed content,
so a captured request cannot be replayed later with a fresh one. It keeps the idempotency keys it
has processed: a delivery is sent again, with the same key, when notification cannot know
whether an earlier attempt arrived (a timeout, a crash between the send and the ledger's record).
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-FleetPipe-Signature"
TIMESTAMP_HEADER = "X-FleetPipe-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
DEFAULT_TOLERANCE_S = 300


def signature(key: bytes, timestamp: int, body: bytes) -> str:
    mac = hmac.new(key, str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def signed_headers(key: bytes, body: bytes, *, delivery_id: str, now_s: float) -> dict[str, str]:
    timestamp = int(now_s)
    return {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(key, timestamp, body),
        IDEMPOTENCY_HEADER: delivery_id,
    }


def verify(
    key: bytes,
    body: bytes,
    *,
    timestamp: str,
    signed: str,
    now_s: float,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> bool:
    """Whether ``signed`` is the signature of ``body`` at ``timestamp``, and that is recent."""
    try:
        at = int(timestamp)
    except ValueError:
        return False
    if abs(now_s - at) > tolerance_s:
        return False
    return hmac.compare_digest(signature(key, at, body), signed)
