"""``spec.recipients`` → notification's environment. Pure, as render.py.

The document goes as JSON into ``FLEET_RECIPIENTS`` (phone numbers and URLs are configuration,
not secrets); each webhook sink's signing key only as a ``secretKeyRef`` to the Secret the sink
names, as ``FLEET_WEBHOOK_SECRETS__<NAME>``. A pipeline without recipients gets neither, so its
notification Deployment is what it was before the field existed.
"""

from __future__ import annotations

import json
from typing import Any

from fleetpipe.notification.recipients import Recipients

RECIPIENTS_ENV = "FLEET_RECIPIENTS"
SECRET_ENV_PREFIX = "FLEET_WEBHOOK_SECRETS__"  # noqa: S105 - a variable name, no value


def secret_env(name: str) -> str:
    return f"{SECRET_ENV_PREFIX}{name.upper()}"


def recipients_env(recipients: Recipients) -> list[dict[str, Any]]:
    if not (recipients.operations or recipients.webhooks):
        return []
    document = recipients.model_dump(mode="json", exclude_defaults=True)
    env: list[dict[str, Any]] = [
        {"name": RECIPIENTS_ENV, "value": json.dumps(document, sort_keys=True)}
    ]
    for sink in recipients.webhooks:
        ref = {"name": sink.secret, "key": sink.secret_key}
        env.append({"name": secret_env(sink.name), "valueFrom": {"secretKeyRef": ref}})
    return env


def recipient_secrets(recipients: Recipients) -> dict[str, str]:
    """Secret name → the spec field that names it."""
    return {
        sink.secret: f"spec.recipients.webhooks[{i}].secret"
        for i, sink in reversed(list(enumerate(recipients.webhooks)))
    }
