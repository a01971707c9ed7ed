"""Which alerts reach a driver, on which channels, to which address. Pure: values in, values out.

* Only an alert episode's OPEN notifies by default: UPDATEs would repeat what the driver already
  knows, and most RESOLVEDs are noise to someone driving. Rules listed in ``resolved_rules`` also
  notify on RESOLVED (an operator may want "back inside the geofence"); OPEN and RESOLVED are
  separate deliveries in the ledger.
* Channels come from the rule's entry in ``rule_channels`` when there is one (crash and SOS call
  the driver by default), else from the severity's entry in ``channels``.
* An alert below ``min_severity``, or older than ``max_alert_age_s`` when it is first seen (a
  backlog after an outage), is skipped: texting a driver about speeding an hour ago helps nobody.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fleetpipe.pb.v1 import alert_pb2
from fleetpipe.registry import Vehicle

# The recipient of a driver's deliveries in the ledger; recipients.py names the others.
DRIVER = "driver"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]

    @classmethod
    def from_pb(cls, value: int) -> Severity | None:
        return _SEVERITY_FROM_PB.get(value)


_SEVERITY_RANK = {Severity.INFO: 1, Severity.WARNING: 2, Severity.CRITICAL: 3}
_SEVERITY_FROM_PB: dict[int, Severity] = {
    alert_pb2.SEVERITY_INFO: Severity.INFO,
    alert_pb2.SEVERITY_WARNING: Severity.WARNING,
    alert_pb2.SEVERITY_CRITICAL: Severity.CRITICAL,
}


class Channel(StrEnum):
    SMS = "sms"
    WHATSAPP = "whatsapp"
    VOICE = "voice"
    # Only for webhook sinks (fleetpipe.notification.recipients), never a driver's channel.
    WEBHOOK = "webhook"

    @property
    def by_phone(self) -> bool:
        return self is not Channel.WEBHOOK


class Phase(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


class RateLimitPolicy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # At most this many alerts notified to one driver per window (every channel of one alert
    # counts once).
    max_per_window: int = Field(default=5, ge=1)
    window_s: float = Field(default=600.0, gt=0)
    # The same rule is not notified to the same driver again within this time.
    cooldown_s: float = Field(default=300.0, ge=0)
    # Crash and SOS (critical) always go through.
    critical_bypass: bool = True


class RoutingPolicy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    min_severity: Severity = Severity.WARNING
    channels: dict[Severity, tuple[Channel, ...]] = {
        Severity.INFO: (),
        Severity.WARNING: (Channel.SMS,),
        Severity.CRITICAL: (Channel.SMS, Channel.VOICE),
    }
    rule_channels: dict[str, tuple[Channel, ...]] = {
        "crash": (Channel.VOICE, Channel.SMS),
        "sos": (Channel.VOICE, Channel.SMS),
    }
    resolved_rules: frozenset[str] = frozenset()
    # A WhatsApp delivery to a driver without a WhatsApp number goes by SMS instead.
    whatsapp_fallback_to_sms: bool = True
    max_alert_age_s: float = Field(default=900.0, gt=0)
    limits: RateLimitPolicy = RateLimitPolicy()

    @model_validator(mode="after")
    def _drivers_by_phone(self) -> RoutingPolicy:
        chosen = [*self.channels.values(), *self.rule_channels.values()]
        if any(not c.by_phone for channels in chosen for c in channels):
            raise ValueError("a driver is reached by sms, whatsapp or voice, not by webhook")
        return self


@dataclass(frozen=True, slots=True)
class Contact:
    """How to reach the driver of a vehicle, from the registry."""

    driver_key: str  # what the rate limit counts by: the driver, else the vehicle
    driver_name: str = ""
    phone: str = ""
    whatsapp: str = ""

    @classmethod
    def of(cls, vehicle: Vehicle | None, alert: alert_pb2.Alert) -> Contact:
        driver = alert.driver_id or (vehicle.driver_id if vehicle else "")
        key = f"driver:{driver}" if driver else f"vehicle:{alert.vehicle_id}"
        if vehicle is None:
            return cls(key)
        return cls(key, vehicle.driver_name, vehicle.driver_phone, vehicle.driver_whatsapp)


@dataclass(frozen=True, slots=True)
class PlannedDelivery:
    channel: Channel
    to: str  # the provider address, with the "whatsapp:" prefix where it applies; or a URL
    skip_reason: str = ""  # set: recorded as SKIPPED, nothing sent
    recipient: str = DRIVER  # or "ops:<name>", "webhook:<name>" (recipients.py)


def alert_phase(alert: alert_pb2.Alert, policy: RoutingPolicy) -> Phase | None:
    """The delivery phase an alert state starts, or None when this state never notifies."""
    if alert.state == alert_pb2.ALERT_STATE_OPEN:
        return Phase.OPEN
    if alert.state == alert_pb2.ALERT_STATE_RESOLVED and alert.rule in policy.resolved_rules:
        return Phase.RESOLVED
    return None


def alert_time_us(alert: alert_pb2.Alert) -> int:
    """The time an alert is judged by (rate limits, staleness): when detection decided it."""
    return alert.detected_time_us or alert.event_time_us or alert.episode_start_us


def skip_reason(alert: alert_pb2.Alert, policy: RoutingPolicy, now_us: int) -> str:
    """Why an alert is not notified at all, or "" when it is (before looking at contacts)."""
    severity = Severity.from_pb(alert.severity)
    if severity is None:
        return "severity unspecified"
    if severity.rank < policy.min_severity.rank:
        return f"below minimum severity {policy.min_severity.value}"
    if not channels_for(alert.rule, severity, policy):
        return f"no channel for {alert.rule or 'this rule'} at {severity.value}"
    age_s = (now_us - alert_time_us(alert)) / 1e6
    if age_s > policy.max_alert_age_s:
        return f"stale: {age_s:.0f}s old"
    return ""


def channels_for(rule: str, severity: Severity, policy: RoutingPolicy) -> tuple[Channel, ...]:
    if rule in policy.rule_channels:
        return policy.rule_channels[rule]
    return policy.channels.get(severity, ())


def plan(alert: alert_pb2.Alert, contact: Contact, policy: RoutingPolicy) -> list[PlannedDelivery]:
    """One delivery per channel: an address to send to, or the reason it is skipped."""
    severity = Severity.from_pb(alert.severity)
    if severity is None:
        return []
    planned: list[PlannedDelivery] = []
    chosen: set[Channel] = set()
    for channel in channels_for(alert.rule, severity, policy):
        target = channel
        if (
            channel is Channel.WHATSAPP
            and not contact.whatsapp
            and policy.whatsapp_fallback_to_sms
            and contact.phone
        ):
            target = Channel.SMS
        if target in chosen:
            continue  # WhatsApp fell back to SMS and SMS is already planned
        chosen.add(target)
        if target is Channel.WHATSAPP:
            planned.append(
                PlannedDelivery(target, f"whatsapp:{contact.whatsapp}")
                if contact.whatsapp
                else PlannedDelivery(target, "", "no WhatsApp number for the driver")
            )
        elif contact.phone:
            planned.append(PlannedDelivery(target, contact.phone))
        else:
            planned.append(PlannedDelivery(target, "", "no phone number for the driver"))
    return planned


def is_critical(alert: alert_pb2.Alert) -> bool:
    return alert.severity == alert_pb2.SEVERITY_CRITICAL
