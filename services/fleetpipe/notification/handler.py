"""Alerts in, notifications (driver, operations recipients, webhooks) and outcomes out.

For each alert that notifies (see :mod:`routing` for the driver, :mod:`recipients` for the
others), the decisions for every recipient and channel are written to the ledger first —
PENDING, RATE_LIMITED or SKIPPED — then each PENDING delivery is sent (a webhook's by
:mod:`webhook_delivery`, the others as follows):

1. take the delivery's advisory lock (another replica may be on it after a rebalance);
2. if an earlier attempt may have reached Twilio (the ledger counted one, or the last one failed
   ambiguously), look the delivery up at Twilio first and stop there if it is found;
3. count the attempt in the ledger, then call Twilio; retry 429/5xx/timeouts with backoff;
4. settle the row SENT or FAILED, and publish the outcome.

A crash anywhere leaves the row PENDING with its attempt counted, and the alert uncommitted in
Kafka: the replay finds the row, looks the message up, and does not send it twice. Outcomes
are at-least-once (a replay publishes a settled row's outcome again); consumers key them by
(alert_id, channel).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from prometheus_client import CollectorRegistry
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)

from fleetpipe.core.kafka import Headers, TopicPartition
from fleetpipe.core.loop import BaseHandler, RetryLater
from fleetpipe.core.metrics import Instruments, Metrics
from fleetpipe.core.records import Output, Record
from fleetpipe.core.tracing import CLIENT, Span, Tracing
from fleetpipe.notification.ledger import Entry, LedgerUnavailable, Slot, Status
from fleetpipe.notification.messages import reference, text_body, voice_twiml
from fleetpipe.notification.provider import ProviderError, Sent
from fleetpipe.notification.ratelimit import DriverRateLimiter
from fleetpipe.notification.recipients import (
    Recipients,
    episode_phase,
    plan_operations,
    plan_webhooks,
)
from fleetpipe.notification.redact import redact
from fleetpipe.notification.routing import (
    DRIVER,
    Channel,
    Contact,
    Phase,
    PlannedDelivery,
    RoutingPolicy,
    Severity,
    alert_phase,
    alert_time_us,
    channels_for,
    is_critical,
    plan,
    skip_reason,
)
from fleetpipe.notification.webhook_delivery import WebhookDelivery, WebhookPort, WebhookRetry
from fleetpipe.pb.v1 import alert_pb2, notification_pb2
from fleetpipe.registry import Vehicle

log = logging.getLogger(__name__)

CHANNEL_PB = {
    Channel.SMS: notification_pb2.CHANNEL_SMS,
    Channel.WHATSAPP: notification_pb2.CHANNEL_WHATSAPP,
    Channel.VOICE: notification_pb2.CHANNEL_VOICE,
    Channel.WEBHOOK: notification_pb2.CHANNEL_WEBHOOK,
}
STATUS_PB = {
    Status.SENT: notification_pb2.DELIVERY_STATUS_SENT,
    Status.FAILED: notification_pb2.DELIVERY_STATUS_FAILED,
    Status.RATE_LIMITED: notification_pb2.DELIVERY_STATUS_RATE_LIMITED,
    Status.SKIPPED: notification_pb2.DELIVERY_STATUS_SKIPPED,
}


class LedgerPort(Protocol):
    def entries(self, alert_id: str, phase: Phase) -> dict[Slot, Entry]: ...
    def record(self, entries: list[Entry]) -> dict[Slot, Entry]: ...
    def try_lock(self, entry: Entry) -> bool: ...
    def unlock(self, entry: Entry) -> None: ...
    def count_attempt(self, entry: Entry) -> Entry: ...
    def settle(self, entry: Entry) -> Entry: ...
    def recent_deliveries(self, since: datetime) -> list[tuple[str, str, int]]: ...
    def claimed_sids(self, to_address: str) -> set[str]: ...


class GatewayPort(Protocol):
    def send(self, channel: Channel, to: str, from_: str, content: str) -> Sent: ...
    def find(
        self,
        channel: Channel,
        *,
        to: str,
        from_: str,
        reference: str,
        since: datetime,
        exclude: set[str],
        scan_limit: int,
    ) -> Sent | None: ...


class ContactBook(Protocol):
    def get(self, vehicle_id: str) -> Vehicle | None: ...


@dataclass(frozen=True)
class DeliveryConfig:
    policy: RoutingPolicy
    senders: dict[Channel, str]
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    attempts: int = 5
    initial_backoff_s: float = 0.5
    max_backoff_s: float = 10.0
    deadline_s: float = 60.0
    reconcile_skew_s: float = 120.0
    reconcile_scan_limit: int = 200
    hold_s: float = 0.0
    recipients: Recipients = field(default_factory=Recipients)
    webhook_retry: WebhookRetry = field(default_factory=WebhookRetry)


class NotificationMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        m = Instruments(registry, "fleetpipe_notification")
        self.outcomes = m.counter(
            "outcomes",
            "Delivery decisions by channel and status (replays included)",
            ["channel", "status"],
        )
        self.provider_calls = m.counter(
            "provider_calls",
            "Calls to the provider by operation and result",
            ["operation", "result"],
        )
        self.ledger_seconds = m.histogram(
            "ledger_seconds",
            "Time of one delivery-ledger call at the database",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
        self.reconciled = m.counter(
            "reconciled",
            "Pending deliveries found at the provider instead of being sent again",
            ["channel"],
        )


class NotificationHandler(BaseHandler):
    def __init__(
        self,
        *,
        config: DeliveryConfig,
        contacts: Callable[[], ContactBook],
        ledger: LedgerPort,
        gateway: GatewayPort,
        outcomes_topic: str,
        metrics: NotificationMetrics,
        webhooks: WebhookPort | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        shared: Metrics | None = None,
    ) -> None:
        self.shared = shared
        self._tracing = Tracing.disabled()
        self.config = config
        self._contacts = contacts
        self.ledger = ledger
        self.gateway = gateway
        self.outcomes_topic = outcomes_topic
        self.metrics = metrics
        self._clock = clock
        self._sleep = sleep
        self.limiter = DriverRateLimiter(config.policy.limits)
        self._limiter_loaded = False
        self._webhooks = (
            None
            if webhooks is None
            else WebhookDelivery(
                recipients=config.recipients,
                gateway=webhooks,
                ledger=ledger,
                retry=config.webhook_retry,
                on_call=lambda result: metrics.provider_calls.labels("webhook", result).inc(),
                sleep=sleep,
                hold_s=config.hold_s,
            )
        )

    # -- partitions --------------------------------------------------------------------------
    def on_assign(self, partitions: list[TopicPartition]) -> None:
        # Rebuilt from the ledger on the first batch rather than here: a database outage must
        # surface as RetryLater from handle(), not as an exception inside a rebalance callback.
        self._limiter_loaded = False

    def _load_limiter(self) -> None:
        limiter = DriverRateLimiter(self.config.policy.limits)
        since = datetime.fromtimestamp(self._clock(), UTC) - timedelta(seconds=limiter.horizon_s())
        for driver_key, rule, at_us in self.ledger.recent_deliveries(since):
            limiter.record(driver_key, rule, at_us)
        self.limiter = limiter
        self._limiter_loaded = True

    def on_tick(self, now: float, out: Output) -> None:
        self.limiter.prune(int(now * 1_000_000))

    # -- the batch ---------------------------------------------------------------------------
    def handle(self, records: list[Record[Any]], out: Output) -> None:
        try:
            if not self._limiter_loaded:
                self._load_limiter()
            self._tracing = out.tracing
            for index, record in enumerate(records):
                self._alert(record.value, out, out.traced.get(index))
                out.poll()
        except LedgerUnavailable as exc:
            raise RetryLater(str(exc)) from exc

    def _alert(self, alert: alert_pb2.Alert, out: Output, span: Span | None = None) -> None:
        headers = None if span is None else span.headers
        policy = self.config.policy
        phase = episode_phase(alert)
        if phase is None:
            return
        entries = self.ledger.entries(alert.alert_id, phase)
        if not entries:
            now_us = int(self._clock() * 1_000_000)
            planned: list[Entry] = []
            if alert_phase(alert, policy) is phase:
                reason = skip_reason(alert, policy, now_us)
                if reason:
                    # Decided from the alert and the configuration alone: not worth a ledger
                    # row, a replay decides the same way.
                    self._publish_skip(alert, reason, out, headers)
                else:
                    planned = self._decide(alert, phase)
            planned += self._decide_others(alert, phase, now_us)
            if not planned:
                return
            entries = self.ledger.record(planned)
        for entry in self._in_routing_order(alert, entries):
            settled = self._deliver(alert, entry, span) if entry.status is Status.PENDING else entry
            self._publish(settled, out, headers)
        if self.shared is not None and alert.ingest_time_us:
            # From the triggering event's arrival at ingest to the driver being notified.
            self.shared.end_to_end.observe(max(0.0, self._clock() - alert.ingest_time_us / 1e6))

    def _in_routing_order(self, alert: alert_pb2.Alert, entries: dict[Slot, Entry]) -> list[Entry]:
        """The driver first, in the routing's channel order, then operations, then webhooks."""
        severity = Severity.from_pb(alert.severity) or Severity.INFO
        order = {c: i for i, c in enumerate(channels_for(alert.rule, severity, self.config.policy))}
        kinds = {DRIVER: 0, "ops": 1, "webhook": 2}

        def rank(e: Entry) -> tuple[int, str, int, str]:
            kind = kinds.get(e.recipient.split(":", 1)[0], 3)
            return (kind, e.recipient, order.get(e.channel, 99), e.channel.value)

        return sorted(entries.values(), key=rank)

    def _decide_others(self, alert: alert_pb2.Alert, phase: Phase, now_us: int) -> list[Entry]:
        """Operations recipients' and webhooks' deliveries: not rate limited, but never for a
        stale alert (a backlog after an outage) nor one without a severity."""
        recipients = self.config.recipients
        if not (recipients.operations or recipients.webhooks):
            return []
        age_s = (now_us - alert_time_us(alert)) / 1e6
        if age_s > self.config.policy.max_alert_age_s:
            return []
        planned = [*plan_operations(alert, phase, recipients)]
        if self._webhooks is not None:
            planned += plan_webhooks(alert, phase, recipients)
        return [self._entry(alert, phase, p, Status.PENDING) for p in planned]

    def _entry(
        self,
        alert: alert_pb2.Alert,
        phase: Phase,
        p: PlannedDelivery,
        status: Status,
        *,
        driver_key: str = "",
        driver_id: str = "",
        why: str = "",
    ) -> Entry:
        severity = Severity.from_pb(alert.severity)
        return Entry(
            alert_id=alert.alert_id,
            phase=phase,
            channel=p.channel,
            status=status,
            vehicle_id=alert.vehicle_id,
            driver_id=driver_id or alert.driver_id,
            driver_key=driver_key or p.recipient,
            rule=alert.rule,
            severity=severity.value if severity else "",
            to_address=p.to,
            from_address=self.config.senders.get(p.channel, ""),
            reference=reference(alert.alert_id, phase, p.channel, p.recipient),
            alert_time_us=alert_time_us(alert),
            error_message=why,
            decided_at=None if status is Status.PENDING else datetime.now(UTC),
            recipient=p.recipient,
        )

    def _decide(self, alert: alert_pb2.Alert, phase: Phase) -> list[Entry]:
        vehicle = self._contacts().get(alert.vehicle_id)
        contact = Contact.of(vehicle, alert)
        planned = plan(alert, contact, self.config.policy)
        at_us = alert_time_us(alert)
        sendable = [p for p in planned if not p.skip_reason]
        limited = (
            self.limiter.decide(contact.driver_key, alert.rule, at_us, critical=is_critical(alert))
            if sendable
            else ""
        )
        if sendable and not limited:
            self.limiter.record(contact.driver_key, alert.rule, at_us)
        entries = []
        for p in planned:
            status, why = Status.PENDING, ""
            if p.skip_reason:
                status, why = Status.SKIPPED, p.skip_reason
            elif limited:
                status, why = Status.RATE_LIMITED, limited
            driver_id = alert.driver_id or (vehicle.driver_id if vehicle else "")
            entries.append(
                self._entry(
                    alert,
                    phase,
                    p,
                    status,
                    driver_key=contact.driver_key,
                    driver_id=driver_id,
                    why=why,
                )
            )
        return entries

    # -- one delivery ------------------------------------------------------------------------
    def _content(self, alert: alert_pb2.Alert, entry: Entry) -> str:
        if entry.channel is Channel.VOICE:
            return voice_twiml(alert, entry.phase, tz=self.config.tz)
        return text_body(
            alert, entry.phase, entry.channel, tz=self.config.tz, recipient=entry.recipient
        )

    def _deliver(self, alert: alert_pb2.Alert, entry: Entry, span: Span | None = None) -> Entry:
        if not self.ledger.try_lock(entry):
            raise RetryLater(f"delivery {'/'.join(entry.key)} is in progress elsewhere")
        try:
            with self._tracing.child(
                "webhook" if entry.channel is Channel.WEBHOOK else f"twilio {entry.channel.value}",
                span,
                kind=CLIENT,
                attributes={
                    "fleetpipe.alert_id": entry.alert_id,
                    "fleetpipe.rule": entry.rule,
                    "fleetpipe.recipient": entry.recipient,
                },
            ) as call:
                if entry.channel is Channel.WEBHOOK:
                    settled = self._deliver_webhook(alert, entry)
                else:
                    settled = self._deliver_locked(alert, entry)
                if call is not None:
                    call.set("fleetpipe.delivery.status", settled.status.value)
                    call.set("fleetpipe.delivery.attempts", settled.attempts)
                return settled
        finally:
            self.ledger.unlock(entry)

    def _deliver_webhook(self, alert: alert_pb2.Alert, entry: Entry) -> Entry:
        if self._webhooks is None:
            # A row another process planned: this one cannot send it, and must not hold the
            # batch up for it.
            return self.ledger.settle(
                entry.settled(
                    Status.FAILED,
                    error_code="no_sink",
                    error_message="this process has no webhook client",
                )
            )
        return self._webhooks.deliver(alert, entry)

    def _deliver_locked(self, alert: alert_pb2.Alert, entry: Entry) -> Entry:
        cfg = self.config
        content = self._content(alert, entry)
        # An attempt counted before this one may have reached Twilio before its process died.
        maybe_sent = entry.attempts > 0
        sent: Sent | None = None
        reconciled = False
        retrying = Retrying(
            stop=stop_after_attempt(cfg.attempts) | stop_after_delay(cfg.deadline_s),
            wait=wait_exponential_jitter(
                multiplier=cfg.initial_backoff_s,
                max=cfg.max_backoff_s,
                jitter=cfg.initial_backoff_s,
            ),
            retry=retry_if_exception(lambda e: isinstance(e, ProviderError) and e.transient),
            reraise=True,
            sleep=self._sleep,
            before_sleep=lambda state: log.warning(
                "delivery %s attempt %d failed, retrying: %s",
                "/".join(entry.key),
                state.attempt_number,
                redact(str(state.outcome.exception())) if state.outcome else "",
            ),
        )
        try:
            for attempt in retrying:
                with attempt:
                    if maybe_sent:
                        sent = self._find(entry)
                        if sent is not None:
                            reconciled = True
                            break
                    entry = self.ledger.count_attempt(entry)
                    try:
                        sent = self.gateway.send(
                            entry.channel, entry.to_address, entry.from_address, content
                        )
                    except ProviderError as exc:
                        self.metrics.provider_calls.labels("send", exc.code or "error").inc()
                        maybe_sent = maybe_sent or exc.ambiguous
                        raise
                    self.metrics.provider_calls.labels("send", "ok").inc()
        except ProviderError as exc:
            if exc.transient:
                raise RetryLater(
                    f"provider unavailable for {'/'.join(entry.key)}: {exc.code} "
                    f"{redact(exc.message)}"
                ) from exc
            log.warning(
                "delivery %s failed permanently: %s %s",
                "/".join(entry.key),
                exc.code,
                redact(exc.message),
            )
            return self.ledger.settle(
                entry.settled(Status.FAILED, error_code=exc.code, error_message=exc.message)
            )
        assert sent is not None
        if reconciled:
            self.metrics.reconciled.labels(entry.channel.value).inc()
            log.info("delivery %s found at the provider as %s", "/".join(entry.key), sent.sid)
        if cfg.hold_s:
            # Fault injection: Twilio has the message, the ledger does not know yet.
            self._sleep(cfg.hold_s)
        return self.ledger.settle(entry.settled(Status.SENT, provider_sid=sent.sid))

    def _find(self, entry: Entry) -> Sent | None:
        since = (entry.created_at or datetime.fromtimestamp(self._clock(), UTC)) - timedelta(
            seconds=self.config.reconcile_skew_s
        )
        exclude = (
            self.ledger.claimed_sids(entry.to_address) if entry.channel is Channel.VOICE else set()
        )
        try:
            found = self.gateway.find(
                entry.channel,
                to=entry.to_address,
                from_=entry.from_address,
                reference=entry.reference,
                since=since,
                exclude=exclude,
                scan_limit=self.config.reconcile_scan_limit,
            )
        except ProviderError as exc:
            self.metrics.provider_calls.labels("find", exc.code or "error").inc()
            # Not knowing whether it was sent, never send: retry the lookup.
            raise ProviderError(
                f"lookup failed: {exc.message}", code=exc.code, transient=True, ambiguous=True
            ) from exc
        self.metrics.provider_calls.labels("find", "found" if found else "none").inc()
        return found

    # -- outcomes ----------------------------------------------------------------------------
    def _publish(self, entry: Entry, out: Output, headers: Headers | None = None) -> None:
        decided = entry.decided_at or datetime.now(UTC)
        outcome = notification_pb2.NotificationOutcome(
            alert_id=entry.alert_id,
            channel=CHANNEL_PB[entry.channel],
            status=STATUS_PB[entry.status],
            vehicle_id=entry.vehicle_id,
            driver_id=entry.driver_id,
            provider_sid=entry.provider_sid or "",
            error_code=entry.error_code,
            error_message=entry.error_message,
            attempts=entry.attempts,
            decided_time_us=int(decided.timestamp() * 1_000_000),
            rule=entry.rule,
            recipient=entry.recipient,
            delivery_id=entry.delivery_id,
        )
        out.send(self.outcomes_topic, outcome.SerializeToString(), entry.vehicle_id, headers)
        self.metrics.outcomes.labels(entry.channel.value, entry.status.value).inc()

    def _publish_skip(
        self, alert: alert_pb2.Alert, reason: str, out: Output, headers: Headers | None = None
    ) -> None:
        outcome = notification_pb2.NotificationOutcome(
            alert_id=alert.alert_id,
            channel=notification_pb2.CHANNEL_UNSPECIFIED,
            status=notification_pb2.DELIVERY_STATUS_SKIPPED,
            vehicle_id=alert.vehicle_id,
            driver_id=alert.driver_id,
            error_message=reason,
            decided_time_us=int(self._clock() * 1_000_000),
            rule=alert.rule,
        )
        out.send(self.outcomes_topic, outcome.SerializeToString(), alert.vehicle_id, headers)
        self.metrics.outcomes.labels("none", Status.SKIPPED.value).inc()
