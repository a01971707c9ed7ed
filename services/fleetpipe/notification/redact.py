"""What the logs may say about an address: phone numbers masked, URLs cut to their origin.

Phone numbers are not secrets (they sit in the FleetPipeline and the ledger), but logs travel
further than either; a webhook URL may carry a token in its path or query.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# E.164 as providers echo it in their errors; bare digit runs are too often times or ids.
_PHONE = re.compile(r"\+\d{6,15}")


def mask_phone(number: str) -> str:
    """``+31612345678`` → ``+316******78``; a ``whatsapp:`` prefix is kept."""
    prefix, _, digits = number.rpartition(":")
    head = 4 if digits.startswith("+") else 3
    if len(digits) <= head + 2:
        return f"{prefix}:{'*' * len(digits)}" if prefix else "*" * len(digits)
    masked = digits[:head] + "*" * (len(digits) - head - 2) + digits[-2:]
    return f"{prefix}:{masked}" if prefix else masked


def redact(text: str) -> str:
    """``text`` with every phone-number-like run of digits masked."""
    return _PHONE.sub(lambda m: mask_phone(m.group()), text)


def origin(url: str) -> str:
    """``https://host:port`` of a URL, without its path, query or credentials."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"


def address(channel_by_phone: bool, to: str) -> str:
    """A delivery's destination as a log line may show it."""
    return mask_phone(to) if channel_by_phone else origin(to)
