"""Who hears of an alert besides its driver: operations recipients and signed webhook sinks.

A FleetPipeline's ``spec.recipients`` is a :class:`Recipients`; the operator renders it as JSON
into notification's ``FLEET_RECIPIENTS`` and the CRD's schema for it is generated from this model
(``make crd-schema``), so the API server refuses what notification would refuse::

    operations:
      - name: night_desk          # lower-case letters, digits, '_'; unique
        phone: "+31201234567"     # E.164; whatsapp: another number for WhatsApp (optional)
        fleets: [fleet-1]         # [] (the default): every fleet of the pipeline
        rules: []                 # [] (the default): every rule
        channels: {critical: [voice, sms], warning: [sms]}
    webhooks:
      - name: dispatch
        url: https://dispatch.example.com/hooks/fleetpipe
        secret: fleetpipe-webhook # a Kubernetes Secret; its key ``hmac_key`` signs the body
        min_severity: warning

Pure: values in, values out. An operations recipient gets the driver's text (SMS, WhatsApp) or
call on the channels its severity lists; a webhook gets every alert phase at or above its
minimum severity as signed JSON (see :mod:`fleetpipe.notification.signing`). Neither is rate
limited: the per-driver limit protects someone driving, and an operations desk chooses its
channels and rules instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.config import JsonDict

from fleetpipe.notification.redact import origin
from fleetpipe.notification.routing import Channel, Phase, PlannedDelivery, Severity
from fleetpipe.pb.v1 import alert_pb2

# Also the suffix of the sink's secret variable (FLEET_WEBHOOK_SECRETS__<NAME>), hence no '-'.
NAME_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"
PHONE_PATTERN = r"^\+[1-9][0-9]{6,14}$"
URL_PATTERN = r"^https?://[^\s/?#]+[^\s]*$"

PhoneChannel = Literal["sms", "whatsapp", "voice"]

# The API server keeps these lists as maps keyed by name: a second entry of one name is refused
# there ("Duplicate value"), before the operator sees it.
_BY_NAME: JsonDict = {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]}


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ChannelsBySeverity(_Model):
    """The channels an operations recipient is reached on, per alert severity."""

    info: tuple[PhoneChannel, ...] = ()
    warning: tuple[PhoneChannel, ...] = ()
    critical: tuple[PhoneChannel, ...] = ("sms",)

    def of(self, severity: Severity) -> tuple[Channel, ...]:
        chosen: tuple[PhoneChannel, ...] = getattr(self, severity.value)
        return tuple(dict.fromkeys(Channel(c) for c in chosen))


class OperationsRecipient(_Model):
    """A person or desk reached by SMS, WhatsApp or a call, like a driver."""

    name: str = Field(pattern=NAME_PATTERN)
    phone: str = Field(pattern=PHONE_PATTERN, description="E.164, for SMS and calls")
    whatsapp: str | None = Field(
        default=None, pattern=PHONE_PATTERN, description="E.164; without it, phone"
    )
    fleets: tuple[str, ...] = Field(default=(), description="[]: every fleet of the pipeline")
    rules: tuple[str, ...] = Field(default=(), description="[]: every rule")
    channels: ChannelsBySeverity = ChannelsBySeverity()
    resolved: bool = Field(default=False, description="also told when an episode ends")

    @property
    def recipient(self) -> str:
        """Its name in the delivery ledger."""
        return f"ops:{self.name}"


class WebhookSink(_Model):
    """An HTTP endpoint that receives every alert phase as JSON, signed with HMAC-SHA256."""

    name: str = Field(pattern=NAME_PATTERN)
    url: str = Field(pattern=URL_PATTERN, max_length=2048)
    secret: str = Field(
        min_length=1,
        max_length=253,
        description="the Kubernetes Secret holding the signing key (never the key itself)",
    )
    secret_key: str = Field(default="hmac_key", pattern=r"^[-._a-zA-Z0-9]{1,253}$")
    fleets: tuple[str, ...] = Field(default=(), description="[]: every fleet of the pipeline")
    rules: tuple[str, ...] = Field(default=(), description="[]: every rule")
    min_severity: Severity = Severity.WARNING
    resolved: bool = Field(default=True, description="also sent when an episode ends")
    timeout_s: float = Field(default=5.0, gt=0, le=60)

    @property
    def recipient(self) -> str:
        return f"webhook:{self.name}"


class Recipients(_Model):
    operations: tuple[OperationsRecipient, ...] = Field(default=(), json_schema_extra=_BY_NAME)
    webhooks: tuple[WebhookSink, ...] = Field(default=(), json_schema_extra=_BY_NAME)

    @model_validator(mode="after")
    def _unique_names(self) -> Recipients:
        for kind, names in (
            ("operations", [r.name for r in self.operations]),
            ("webhooks", [w.name for w in self.webhooks]),
        ):
            twice = sorted({n for n in names if names.count(n) > 1})
            if twice:
                raise ValueError(f"{kind}: more than one entry named {', '.join(twice)}")
        return self

    def webhook(self, recipient: str) -> WebhookSink | None:
        return next((w for w in self.webhooks if w.recipient == recipient), None)


def episode_phase(alert: alert_pb2.Alert) -> Phase | None:
    """The phase an alert state starts for recipients that follow whole episodes."""
    if alert.state == alert_pb2.ALERT_STATE_OPEN:
        return Phase.OPEN
    if alert.state == alert_pb2.ALERT_STATE_RESOLVED:
        return Phase.RESOLVED
    return None


def _applies(fleets: tuple[str, ...], rules: tuple[str, ...], alert: alert_pb2.Alert) -> bool:
    return (not fleets or alert.fleet_id in fleets) and (not rules or alert.rule in rules)


def plan_operations(
    alert: alert_pb2.Alert, phase: Phase, recipients: Recipients
) -> Iterator[PlannedDelivery]:
    severity = Severity.from_pb(alert.severity)
    if severity is None:
        return
    for person in recipients.operations:
        if not _applies(person.fleets, person.rules, alert):
            continue
        if phase is Phase.RESOLVED and not person.resolved:
            continue
        for channel in person.channels.of(severity):
            to = f"whatsapp:{person.whatsapp or person.phone}"
            if channel is not Channel.WHATSAPP:
                to = person.phone
            yield PlannedDelivery(channel, to, recipient=person.recipient)


def plan_webhooks(
    alert: alert_pb2.Alert, phase: Phase, recipients: Recipients
) -> Iterator[PlannedDelivery]:
    severity = Severity.from_pb(alert.severity)
    if severity is None:
        return
    for sink in recipients.webhooks:
        if not _applies(sink.fleets, sink.rules, alert) or severity.rank < sink.min_severity.rank:
            continue
        if phase is Phase.RESOLVED and not sink.resolved:
            continue
        # The ledger keeps the URL's origin only: a path or query may carry the receiver's token.
        yield PlannedDelivery(Channel.WEBHOOK, origin(sink.url), recipient=sink.recipient)
