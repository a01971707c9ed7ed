"""FleetPipeline specs for the operator's unit tests, as a user would write them (before
``parse_spec``): one base that logs in to Kafka with SCRAM over TLS, and what a test changes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def scram_spec(*, kafka: Mapping[str, Any] | None = None, **sections: Any) -> dict[str, Any]:
    """A pipeline of 5,000 vehicles on the listener kafka-0:9093 (SASL_SSL, SCRAM-SHA-512),
    with database Secret "db" and Twilio Secret "twilio".

    ``kafka`` adds keys to ``spec.kafka`` (the logins' Secrets, the CA, the topics' suffix);
    ``sections`` add or replace whole sections (``storage=``, ``console=``, ``mqtt=``).
    """
    base: dict[str, Any] = {
        "fleet": {"vehicles": 5000},
        "kafka": {
            "bootstrapServers": "kafka-0:9093",
            "securityProtocol": "SASL_SSL",
            "saslMechanism": "SCRAM-SHA-512",
            **(kafka or {}),
        },
        "storage": {"databaseSecret": "db"},
        "notification": {"twilioSecret": "twilio"},
    }
    return {**base, **sections}


def with_kafka(spec: Mapping[str, Any], **kafka: Any) -> dict[str, Any]:
    """``spec`` with ``kafka`` added to or changed in its ``spec.kafka``; ``spec`` is left as
    it was."""
    return {**spec, "kafka": {**spec["kafka"], **kafka}}
