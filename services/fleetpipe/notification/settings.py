"""Notification settings: ``FLEET_*`` variables, nested with ``__``.

Routing tables are JSON in the environment, for example
``FLEET_ROUTING__CHANNELS='{"warning": ["whatsapp"], "critical": ["sms", "voice"]}'``.
Operations recipients and webhook sinks too (``FLEET_RECIPIENTS``, see recipients.py); each
sink's signing key comes from a Secret as ``FLEET_WEBHOOK_SECRETS__<NAME>``.
"""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from fleetpipe.core.db import PostgresSettings
from fleetpipe.core.settings import ServiceSettings
from fleetpipe.notification.recipients import Recipients
from fleetpipe.notification.routing import Channel, RoutingPolicy, Severity


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TwilioSettings(_Frozen):
    """Credentials come from a Kubernetes Secret through the environment; never logged."""

    account_sid: str = ""
    auth_token: SecretStr = SecretStr("")
    # None talks to Twilio's cloud; tests and the local stack set the contract server's URL.
    api_base_url: str | None = None
    sms_from: str = ""
    whatsapp_from: str = ""  # "whatsapp:+1…"; empty: the sms_from number on WhatsApp
    voice_from: str = ""  # empty: sms_from
    messaging_service_sid: str = ""
    timeout_s: float = Field(default=10.0, gt=0, le=120)

    @model_validator(mode="after")
    def _need_credentials(self) -> TwilioSettings:
        if not self.account_sid or not self.auth_token.get_secret_value():
            raise ValueError(
                "twilio.account_sid and twilio.auth_token are required "
                "(FLEET_TWILIO__ACCOUNT_SID, FLEET_TWILIO__AUTH_TOKEN)"
            )
        if not self.sms_from and not self.messaging_service_sid:
            raise ValueError("twilio.sms_from (or twilio.messaging_service_sid) is required")
        return self

    def sender(self, channel: Channel) -> str:
        if channel is Channel.WHATSAPP:
            return self.whatsapp_from or f"whatsapp:{self.sms_from}"
        if channel is Channel.VOICE:
            return self.voice_from or self.sms_from
        return self.sms_from


class RetrySettings(_Frozen):
    """Retries of one provider call on 429, 5xx and timeouts; then the batch waits in Kafka."""

    attempts: int = Field(default=5, ge=1, le=50)
    initial_backoff_s: float = Field(default=0.5, gt=0)
    max_backoff_s: float = Field(default=10.0, gt=0)
    # Bounds one alert's time in retries, well under the consumer's max.poll.interval.ms.
    deadline_s: float = Field(default=60.0, gt=0, le=240)


class NotificationSettings(ServiceSettings):
    group_id: str = "fleetpipe-notification"
    registry_path: Path = Path("/etc/fleetpipe/vehicles.csv")
    registry_check_interval_s: float = Field(default=5.0, gt=0)
    postgres: PostgresSettings = PostgresSettings()
    twilio: TwilioSettings
    routing: RoutingPolicy = RoutingPolicy()
    retry: RetrySettings = RetrySettings()
    # How far back a pending entry's message may sit in Twilio's list relative to when the
    # entry was written: covers clock skew between the database and Twilio.
    reconcile_skew_s: float = Field(default=120.0, ge=0)
    reconcile_scan_limit: int = Field(default=200, ge=1, le=10_000)
    # Who besides the driver hears of an alert, and the webhooks' signing keys by sink name.
    recipients: Recipients = Recipients()
    webhook_secrets: dict[str, SecretStr] = {}
    # A webhook sink that stays down is given up on after this (each alert costs at most
    # deadline_s), so that it never holds up the other deliveries.
    webhook_retry: RetrySettings = RetrySettings(attempts=4, deadline_s=20.0)
    # Times in messages are shown in this zone (an IANA name such as Europe/Amsterdam).
    timezone: str = "UTC"
    # Small batches: a crash replays little, and outcomes follow their alerts closely.
    max_batch: int = Field(default=200, ge=1, le=10_000)
    # Fault injection for crash drills: hold each delivery this long after the provider
    # accepted it and before the ledger records it (the window a SIGKILL test aims at).
    hold_ms: int = Field(default=0, ge=0)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"timezone {value!r} is not a known IANA time zone") from exc
        return value

    @model_validator(mode="after")
    def _every_webhook_signed(self) -> NotificationSettings:
        # An unsigned delivery would be refused by every receiver: refuse to start instead,
        # naming the variable, while the alerts wait in Kafka.
        missing = [
            w.name
            for w in self.recipients.webhooks
            if not self.webhook_secrets.get(w.name, SecretStr("")).get_secret_value()
        ]
        if missing:
            names = ", ".join(f"FLEET_WEBHOOK_SECRETS__{n.upper()}" for n in missing)
            raise ValueError(
                f"webhook sink(s) {', '.join(missing)} have no signing key: set {names} "
                "(from the Kubernetes Secret the sink names)"
            )
        return self


__all__ = [
    "Channel",
    "NotificationSettings",
    "Recipients",
    "RetrySettings",
    "RoutingPolicy",
    "Severity",
    "TwilioSettings",
]
