"""The notification handler's decisions, with a hand-written ledger and provider."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry

from fleetpipe.core.loop import RetryLater
from fleetpipe.notification.handler import (
    DeliveryConfig,
    GatewayPort,
    LedgerPort,
    NotificationHandler,
    NotificationMetrics,
)
from fleetpipe.notification.ledger import Entry, LedgerUnavailable, Slot, Status
from fleetpipe.notification.provider import ProviderError, Sent
from fleetpipe.notification.recipients import (
    OperationsRecipient,
    Recipients,
    WebhookSink,
)
from fleetpipe.notification.routing import (
    DRIVER,
    Channel,
    Phase,
    RateLimitPolicy,
    RoutingPolicy,
)
from fleetpipe.notification.webhook_delivery import WebhookPort, WebhookRetry
from fleetpipe.pb.v1 import alert_pb2, notification_pb2
from fleetpipe.registry import Vehicle, VehicleRegistry
from fleetpipe_loadtest import records
from support.builders import consumed, output
from support.fakes import RecordingProducer

pytestmark = pytest.mark.unit

PHONE = "+31612345678"
NOW_S = 1_750_000_000.0


class FakeLedger(LedgerPort):
    def __init__(self) -> None:
        self.rows: dict[tuple[str, str, str, str], Entry] = {}
        self.locked: set[tuple[str, str, str, str]] = set()
        self.foreign_locks: set[tuple[str, str, str, str]] = set()
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise LedgerUnavailable("database down")

    def entries(self, alert_id: str, phase: Phase) -> dict[Slot, Entry]:
        self._check()
        return {e.slot: e for k, e in self.rows.items() if k[:2] == (alert_id, phase.value)}

    def record(self, entries: list[Entry]) -> dict[Slot, Entry]:
        self._check()
        for e in entries:
            created = datetime.fromtimestamp(NOW_S, UTC)
            self.rows.setdefault(
                e.key, replace(e, created_at=created, delivery_id=f"id-{len(self.rows)}")
            )
        return self.entries(entries[0].alert_id, entries[0].phase)

    def try_lock(self, entry: Entry) -> bool:
        if entry.key in self.foreign_locks:
            return False
        self.locked.add(entry.key)
        return True

    def unlock(self, entry: Entry) -> None:
        self.locked.discard(entry.key)

    def count_attempt(self, entry: Entry) -> Entry:
        self._check()
        row = self.rows[entry.key]
        self.rows[entry.key] = replace(row, attempts=row.attempts + 1)
        return replace(entry, attempts=entry.attempts + 1)

    def settle(self, entry: Entry) -> Entry:
        self._check()
        self.rows[entry.key] = entry
        return entry

    def recent_deliveries(self, since: datetime) -> list[tuple[str, str, int]]:
        self._check()
        return [
            (e.driver_key, e.rule, e.alert_time_us)
            for e in self.rows.values()
            if e.status in (Status.PENDING, Status.SENT) and e.recipient == DRIVER
        ]

    def claimed_sids(self, to_address: str) -> set[str]:
        return {e.provider_sid for e in self.rows.values() if e.provider_sid}


class FakeGateway(GatewayPort):
    """Answers sends from a script of results; remembers what it 'delivered'."""

    def __init__(self, script: list[ProviderError | None] | None = None) -> None:
        self.script = list(script or [])
        self.sends: list[tuple[Channel, str, str]] = []
        self.delivered: list[tuple[Channel, str, str, str]] = []  # channel, to, content, sid
        self.finds = 0
        self.accept_then_fail = False  # the provider keeps a message whose answer got lost

    def send(self, channel: Channel, to: str, from_: str, content: str) -> Sent:
        self.sends.append((channel, to, content))
        outcome = self.script.pop(0) if self.script else None
        sid = f"SM{len(self.sends):032d}"
        if outcome is not None:
            if self.accept_then_fail and outcome.ambiguous:
                self.delivered.append((channel, to, content, sid))
            raise outcome
        self.delivered.append((channel, to, content, sid))
        return Sent(sid, "queued")

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
    ) -> Sent | None:
        self.finds += 1
        for c, t, content, sid in self.delivered:
            if c == channel and t == to and reference in content:
                return Sent(sid, "delivered")
        return None


class Published:
    """What the handler wrote to its ``Output``, through a recording producer."""

    def __init__(self, producer: RecordingProducer) -> None:
        self.sent = producer.sent

    def outcomes(self) -> list[notification_pb2.NotificationOutcome]:
        values = [p.value for p in self.sent]
        assert None not in values, "the handler sends no tombstones"
        return [notification_pb2.NotificationOutcome.FromString(v) for v in values if v is not None]


SERVER_ERROR = ProviderError(
    "Internal Server Error", code="20500", status=500, transient=True, ambiguous=True
)
TOO_MANY = ProviderError("Too Many Requests", code="20429", status=429, transient=True)
INVALID = ProviderError("Invalid 'To' Phone Number", code="21211", status=400, transient=False)


class FakeWebhooks(WebhookPort):
    """Answers POSTs from a script of errors; remembers every POST."""

    def __init__(self, script: list[ProviderError | None] | None = None) -> None:
        self.script = list(script or [])
        self.posts: list[tuple[str, bytes, str]] = []  # sink, body, delivery id

    def post(self, sink: WebhookSink, body: bytes, *, delivery_id: str) -> Sent:
        self.posts.append((sink.name, body, delivery_id))
        outcome = self.script.pop(0) if self.script else None
        if outcome is not None:
            raise outcome
        return Sent("", "200")


def _handler(
    ledger: FakeLedger,
    gateway: FakeGateway,
    *,
    policy: RoutingPolicy | None = None,
    attempts: int = 4,
    recipients: Recipients | None = None,
    webhooks: FakeWebhooks | None = None,
) -> NotificationHandler:
    registry = VehicleRegistry(
        [
            Vehicle("v-1", "fleet-1", driver_id="d-1", driver_phone=PHONE),
            Vehicle("v-2", "fleet-1", driver_id="d-1", driver_phone=PHONE),
        ]
    )
    return NotificationHandler(
        config=DeliveryConfig(
            policy=policy or RoutingPolicy(),
            senders={
                Channel.SMS: "+15005550006",
                Channel.VOICE: "+15005550006",
                Channel.WHATSAPP: "whatsapp:+15005550006",
            },
            attempts=attempts,
            initial_backoff_s=0.01,
            max_backoff_s=0.01,
            recipients=recipients or Recipients(),
            webhook_retry=WebhookRetry(attempts=3, initial_backoff_s=0.01, max_backoff_s=0.01),
        ),
        contacts=lambda: registry,
        ledger=ledger,
        gateway=gateway,
        webhooks=webhooks,
        outcomes_topic="outcomes",
        metrics=NotificationMetrics(CollectorRegistry()),
        clock=lambda: NOW_S,
        sleep=lambda _s: None,
    )


def _alert(
    rule: str = "speeding",
    vehicle: str = "v-1",
    severity: int = alert_pb2.SEVERITY_WARNING,
    at_s: float = NOW_S - 1,
) -> alert_pb2.Alert:
    return records.alert(vehicle, rule, severity=severity, episode_start_us=int(at_s * 1e6))


def _run(handler: NotificationHandler, *alerts: alert_pb2.Alert) -> Published:
    producer = RecordingProducer()
    handler.handle([consumed(a, topic="alerts") for a in alerts], output(producer))
    return Published(producer)


def _statuses(out: Published) -> list[tuple[int, int]]:
    return [(o.channel, o.status) for o in out.outcomes()]


SMS_SENT = (notification_pb2.CHANNEL_SMS, notification_pb2.DELIVERY_STATUS_SENT)


def test_an_alert_is_sent_once_and_its_outcome_published() -> None:
    ledger, gateway = FakeLedger(), FakeGateway()
    out = _run(_handler(ledger, gateway), _alert())
    assert _statuses(out) == [SMS_SENT]
    assert [(c, to) for c, to, _ in gateway.sends] == [(Channel.SMS, PHONE)]
    (row,) = ledger.rows.values()
    assert (row.status, row.attempts, row.provider_sid) == (
        Status.SENT,
        1,
        out.outcomes()[0].provider_sid,
    )
    assert out.sent[0].key == "v-1"


def test_a_500_then_success_looks_up_before_sending_again() -> None:
    ledger, gateway = FakeLedger(), FakeGateway([SERVER_ERROR])
    out = _run(_handler(ledger, gateway), _alert())
    assert _statuses(out) == [SMS_SENT]
    assert len(gateway.sends) == 2 and gateway.finds == 1
    assert out.outcomes()[0].attempts == 2


def test_an_accepted_message_whose_answer_was_lost_is_not_sent_again() -> None:
    ledger, gateway = FakeLedger(), FakeGateway([SERVER_ERROR])
    gateway.accept_then_fail = True
    out = _run(_handler(ledger, gateway), _alert())
    assert _statuses(out) == [SMS_SENT]
    assert len(gateway.sends) == 1 and len(gateway.delivered) == 1
    assert out.outcomes()[0].provider_sid == gateway.delivered[0][3]


def test_a_429_is_retried_without_a_lookup() -> None:
    ledger, gateway = FakeLedger(), FakeGateway([TOO_MANY, TOO_MANY])
    out = _run(_handler(ledger, gateway), _alert())
    assert _statuses(out) == [SMS_SENT]
    assert (len(gateway.sends), gateway.finds) == (3, 0)


def test_an_invalid_number_fails_once_and_is_never_retried() -> None:
    ledger, gateway = FakeLedger(), FakeGateway([INVALID])
    handler = _handler(ledger, gateway)
    out = _run(handler, _alert())
    (outcome,) = out.outcomes()
    assert (outcome.status, outcome.error_code) == (
        notification_pb2.DELIVERY_STATUS_FAILED,
        "21211",
    )
    replay = _run(handler, _alert())  # the same alert again, as after a crash
    assert _statuses(replay) == [
        (notification_pb2.CHANNEL_SMS, notification_pb2.DELIVERY_STATUS_FAILED)
    ]
    assert len(gateway.sends) == 1


def test_a_provider_outage_leaves_the_delivery_pending_for_later() -> None:
    ledger, gateway = FakeLedger(), FakeGateway([TOO_MANY] * 10)
    handler = _handler(ledger, gateway, attempts=3)
    with pytest.raises(RetryLater, match="provider unavailable"):
        _run(handler, _alert())
    (row,) = ledger.rows.values()
    assert (row.status, row.attempts) == (Status.PENDING, 3)
    gateway.script.clear()
    out = _run(handler, _alert())
    assert _statuses(out) == [SMS_SENT]
    assert gateway.finds == 1, "attempts were counted: the retry looks the message up first"


def test_a_pending_delivery_found_at_the_provider_is_not_sent_again() -> None:
    ledger, gateway = FakeLedger(), FakeGateway()
    handler = _handler(ledger, gateway)
    _run(handler, _alert())
    # Rewind the ledger to what a crash between the send and the settle leaves behind.
    (key,) = ledger.rows
    ledger.rows[key] = replace(ledger.rows[key], status=Status.PENDING, provider_sid=None)
    out = _run(_handler(ledger, gateway), _alert())
    assert _statuses(out) == [SMS_SENT]
    assert len(gateway.sends) == 1


def test_cooldown_and_rate_limit_are_recorded_not_sent() -> None:
    ledger, gateway = FakeLedger(), FakeGateway()
    policy = RoutingPolicy(limits=RateLimitPolicy(max_per_window=2, window_s=600, cooldown_s=300))
    handler = _handler(ledger, gateway, policy=policy)
    out = _run(
        handler,
        _alert("speeding", at_s=NOW_S - 100),
        _alert("speeding", at_s=NOW_S - 90),  # same rule, same driver: cooldown
        _alert("low_fuel", "v-2", at_s=NOW_S - 80),  # same driver in another vehicle
        _alert("overheating", at_s=NOW_S - 70),  # third in the window: limited
        _alert("sos", severity=alert_pb2.SEVERITY_CRITICAL, at_s=NOW_S - 60),  # bypasses
    )
    limited = notification_pb2.DELIVERY_STATUS_RATE_LIMITED
    assert [o.status for o in out.outcomes()] == [
        notification_pb2.DELIVERY_STATUS_SENT,
        limited,
        notification_pb2.DELIVERY_STATUS_SENT,
        limited,
        notification_pb2.DELIVERY_STATUS_SENT,  # sos: voice
        notification_pb2.DELIVERY_STATUS_SENT,  # sos: sms
    ]
    assert out.outcomes()[1].error_message.startswith("cooldown")
    assert len(gateway.sends) == 4


def test_the_limiter_is_rebuilt_from_the_ledger_after_an_assignment() -> None:
    ledger, gateway = FakeLedger(), FakeGateway()
    _run(_handler(ledger, gateway), _alert("speeding", at_s=NOW_S - 100))
    restarted = _handler(ledger, gateway)
    restarted.on_assign([])
    out = _run(restarted, _alert("speeding", at_s=NOW_S - 50))
    assert [o.status for o in out.outcomes()] == [notification_pb2.DELIVERY_STATUS_RATE_LIMITED]


def test_skips_publish_an_outcome_without_a_ledger_row() -> None:
    ledger, gateway = FakeLedger(), FakeGateway()
    info = _alert(severity=alert_pb2.SEVERITY_INFO)
    stale = _alert(at_s=NOW_S - 7200)
    update = _alert()
    update.state = alert_pb2.ALERT_STATE_UPDATE
    out = _run(_handler(ledger, gateway), info, stale, update)
    assert [(o.status, o.error_message) for o in out.outcomes()] == [
        (notification_pb2.DELIVERY_STATUS_SKIPPED, "below minimum severity warning"),
        (notification_pb2.DELIVERY_STATUS_SKIPPED, "stale: 7200s old"),
    ]
    assert ledger.rows == {} and gateway.sends == []


def test_an_unknown_vehicle_is_skipped_with_the_reason() -> None:
    ledger, gateway = FakeLedger(), FakeGateway()
    out = _run(_handler(ledger, gateway), _alert(vehicle="v-unknown"))
    (outcome,) = out.outcomes()
    assert outcome.status == notification_pb2.DELIVERY_STATUS_SKIPPED
    assert outcome.error_message == "no phone number for the driver"


def test_a_delivery_locked_elsewhere_waits() -> None:
    ledger, gateway = FakeLedger(), FakeGateway()
    alert = _alert()
    ledger.foreign_locks.add((alert.alert_id, "open", DRIVER, "sms"))
    with pytest.raises(RetryLater, match="in progress elsewhere"):
        _run(_handler(ledger, gateway), alert)
    assert gateway.sends == []


def test_a_database_outage_makes_the_batch_wait() -> None:
    ledger, gateway = FakeLedger(), FakeGateway()
    ledger.down = True
    with pytest.raises(RetryLater, match="database down"):
        _run(_handler(ledger, gateway), _alert())
    assert gateway.sends == []


# -- operations recipients and webhooks ----------------------------------------------------------
DESK = "+31201234567"
RECIPIENTS = Recipients(
    operations=(
        OperationsRecipient.model_validate(
            {
                "name": "desk",
                "phone": DESK,
                "fleets": ["fleet-1"],
                "channels": {"warning": ["sms"], "critical": ["voice", "sms"]},
            }
        ),
        OperationsRecipient.model_validate(
            {"name": "other_fleet", "phone": "+31207654321", "fleets": ["fleet-2"]}
        ),
    ),
    webhooks=(
        WebhookSink(name="dispatch", url="https://hooks.example.com/x", secret="s"),
        WebhookSink.model_validate(
            {"name": "crashes", "url": "https://c.example.com/", "secret": "s", "rules": ["crash"]}
        ),
    ),
)
SERVER_DOWN = ProviderError("webhook dispatch answered 503", code="503", transient=True)
REFUSED = ProviderError("webhook dispatch refused the request (401)", code="401", transient=False)


def _recipients_of(out: Published) -> list[tuple[str, int, int]]:
    return [(o.recipient, o.channel, o.status) for o in out.outcomes()]


def test_the_desk_and_the_webhook_hear_of_an_alert_after_the_driver() -> None:
    ledger, gateway, hooks = FakeLedger(), FakeGateway(), FakeWebhooks()
    handler = _handler(ledger, gateway, recipients=RECIPIENTS, webhooks=hooks)
    out = _run(handler, _alert("crash", severity=alert_pb2.SEVERITY_CRITICAL))
    sent = notification_pb2.DELIVERY_STATUS_SENT
    voice, sms = notification_pb2.CHANNEL_VOICE, notification_pb2.CHANNEL_SMS
    webhook = notification_pb2.CHANNEL_WEBHOOK
    assert _recipients_of(out) == [
        ("driver", voice, sent),
        ("driver", sms, sent),
        ("ops:desk", voice, sent),
        ("ops:desk", sms, sent),
        ("webhook:crashes", webhook, sent),
        ("webhook:dispatch", webhook, sent),
    ]
    assert [to for _c, to, _b in gateway.sends] == [PHONE, PHONE, DESK, DESK]
    assert [name for name, _b, _k in hooks.posts] == ["crashes", "dispatch"]
    ids = {o.recipient: o.delivery_id for o in out.outcomes() if o.channel == webhook}
    assert [key for _n, _b, key in hooks.posts] == [ids["webhook:crashes"], ids["webhook:dispatch"]]


def test_the_desk_is_not_rate_limited_with_the_driver() -> None:
    ledger, gateway = FakeLedger(), FakeGateway()
    handler = _handler(ledger, gateway, recipients=RECIPIENTS)
    out = _run(handler, _alert("speeding", at_s=NOW_S - 90), _alert("speeding", at_s=NOW_S - 80))
    limited = notification_pb2.DELIVERY_STATUS_RATE_LIMITED
    sent = notification_pb2.DELIVERY_STATUS_SENT
    assert [(o.recipient, o.status) for o in out.outcomes()] == [
        ("driver", sent),
        ("ops:desk", sent),
        ("driver", limited),
        ("ops:desk", sent),
    ]


def test_a_driver_skip_still_reaches_the_others() -> None:
    ledger, gateway, hooks = FakeLedger(), FakeGateway(), FakeWebhooks()
    recipients = Recipients(
        webhooks=(
            WebhookSink.model_validate(
                {
                    "name": "all",
                    "url": "https://h.example.com",
                    "secret": "s",
                    "min_severity": "info",
                }
            ),
        )
    )
    handler = _handler(ledger, gateway, recipients=recipients, webhooks=hooks)
    out = _run(handler, _alert(severity=alert_pb2.SEVERITY_INFO))
    assert [(o.recipient, o.status, o.error_message) for o in out.outcomes()] == [
        ("", notification_pb2.DELIVERY_STATUS_SKIPPED, "below minimum severity warning"),
        ("webhook:all", notification_pb2.DELIVERY_STATUS_SENT, ""),
    ]
    assert gateway.sends == [] and len(hooks.posts) == 1


def test_a_resolved_episode_reaches_the_webhook_only() -> None:
    ledger, gateway, hooks = FakeLedger(), FakeGateway(), FakeWebhooks()
    handler = _handler(ledger, gateway, recipients=RECIPIENTS, webhooks=hooks)
    alert = _alert()
    alert.state = alert_pb2.ALERT_STATE_RESOLVED
    out = _run(handler, alert)
    assert [(o.recipient, o.channel) for o in out.outcomes()] == [
        ("webhook:dispatch", notification_pb2.CHANNEL_WEBHOOK)
    ]
    assert b'"phase":"resolved"' in hooks.posts[0][1]
    assert gateway.sends == []


def test_a_webhook_5xx_is_retried_with_the_same_key_and_body() -> None:
    ledger, gateway, hooks = FakeLedger(), FakeGateway(), FakeWebhooks([SERVER_DOWN])
    handler = _handler(ledger, gateway, recipients=RECIPIENTS, webhooks=hooks)
    out = _run(handler, _alert())
    (hook,) = [o for o in out.outcomes() if o.recipient == "webhook:dispatch"]
    assert (hook.status, hook.attempts) == (notification_pb2.DELIVERY_STATUS_SENT, 2)
    (first, second) = hooks.posts
    assert first == second


def test_a_webhook_that_stays_down_fails_after_its_budget_and_holds_nothing_up() -> None:
    ledger, gateway, hooks = FakeLedger(), FakeGateway(), FakeWebhooks([SERVER_DOWN] * 10)
    handler = _handler(ledger, gateway, recipients=RECIPIENTS, webhooks=hooks)
    out = _run(handler, _alert(), _alert("low_fuel"))
    hooks_out = [o for o in out.outcomes() if o.recipient == "webhook:dispatch"]
    assert [(o.status, o.attempts, o.error_code) for o in hooks_out] == [
        (notification_pb2.DELIVERY_STATUS_FAILED, 3, "503")
    ] * 2
    assert hooks_out[0].error_message == "gave up after retries: webhook dispatch answered 503"
    assert len(gateway.sends) == 4, "the driver's and the desk's messages went out"


def test_a_refused_webhook_fails_at_once_and_a_replay_does_not_post_again() -> None:
    ledger, gateway, hooks = FakeLedger(), FakeGateway(), FakeWebhooks([REFUSED])
    handler = _handler(ledger, gateway, recipients=RECIPIENTS, webhooks=hooks)
    _run(handler, _alert())
    replay = _run(handler, _alert())
    (hook,) = [o for o in replay.outcomes() if o.recipient == "webhook:dispatch"]
    assert (hook.status, hook.error_code) == (notification_pb2.DELIVERY_STATUS_FAILED, "401")
    assert len(hooks.posts) == 1


def test_a_webhook_pending_after_a_crash_is_posted_again_with_its_key() -> None:
    ledger, gateway, hooks = FakeLedger(), FakeGateway(), FakeWebhooks()
    _run(_handler(ledger, gateway, recipients=RECIPIENTS, webhooks=hooks), _alert())
    # Rewind to what a kill between the POST and the settle leaves behind.
    key = next(k for k, e in ledger.rows.items() if e.channel is Channel.WEBHOOK)
    ledger.rows[key] = replace(ledger.rows[key], status=Status.PENDING)
    out = _run(_handler(ledger, gateway, recipients=RECIPIENTS, webhooks=hooks), _alert())
    (hook,) = [o for o in out.outcomes() if o.recipient == "webhook:dispatch"]
    assert hook.status == notification_pb2.DELIVERY_STATUS_SENT
    assert len(hooks.posts) == 2 and hooks.posts[0] == hooks.posts[1]
    assert len(gateway.sends) == 2, "the driver's and the desk's settled rows are not resent"
