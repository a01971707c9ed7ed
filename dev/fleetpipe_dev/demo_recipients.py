"""The demo's recipients beyond the drivers: an operations desk and a signed webhook sink.

The desk gets warnings by SMS and critical alerts by SMS and a call, through the same Twilio
as the drivers (the local stand-in accepts its number; with real Twilio credentials only a
number given in ``FLEET_DEMO_OPERATIONS_PHONE`` is used). The sink is a
:class:`~fleetpipe_dev.webhook_receiver.WebhookReceiver` on a free loopback port that checks
every request's HMAC signature with the demo's key: ``FLEET_DEMO_WEBHOOK_SECRET``, else one
generated for the run. The key reaches notification as ``FLEET_WEBHOOK_SECRETS__DISPATCH``
only; it is never printed nor written to the report.

After the run, :func:`outcome` reads the deliveries back — notification's ledger in PostgreSQL,
what the Twilio stand-in received for the desk, what the receiver verified — for the summary.
"""

from __future__ import annotations

import json
import secrets
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr
from rich.text import Text

from fleetpipe.core.db import PostgresSettings, connect
from fleetpipe_dev.twilio import TwilioContractServer
from fleetpipe_dev.webhook_receiver import WebhookReceiver, WebhookTally

OPERATIONS_NAME = "ops_desk"
SINK_NAME = "dispatch"
# A fictional number (555-01xx), outside the simulated drivers' +1555NNNNNNN.
STAND_IN_OPERATIONS_PHONE = "+14155550100"


@dataclass(frozen=True)
class DemoRecipients:
    fleet_id: str
    operations_phone: str  # "": no operations desk (real Twilio without a number given)
    receiver: WebhookReceiver
    secret: SecretStr

    @classmethod
    def start(cls, fleet_id: str, environ: Mapping[str, str], *, stand_in: bool) -> DemoRecipients:
        phone = environ.get("FLEET_DEMO_OPERATIONS_PHONE", "")
        if not phone and stand_in:
            phone = STAND_IN_OPERATIONS_PHONE
        key = environ.get("FLEET_DEMO_WEBHOOK_SECRET") or secrets.token_urlsafe(32)
        return cls(fleet_id, phone, WebhookReceiver(key).start(), SecretStr(key))

    def stop(self) -> None:
        self.receiver.stop()

    def notification_env(self) -> dict[str, str]:
        """Notification's ``FLEET_RECIPIENTS`` and the sink's signing key."""
        operations = []
        if self.operations_phone:
            operations.append(
                {
                    "name": OPERATIONS_NAME,
                    "phone": self.operations_phone,
                    "fleets": [self.fleet_id],
                    "channels": {"warning": ["sms"], "critical": ["sms", "voice"]},
                }
            )
        sink = {
            "name": SINK_NAME,
            "url": self.receiver.url,
            # In a cluster, the Secret holding the key; here the key comes in the variable below.
            "secret": "demo-webhook",
            "fleets": [self.fleet_id],
            "min_severity": "warning",
        }
        return {
            "FLEET_RECIPIENTS": json.dumps({"operations": operations, "webhooks": [sink]}),
            f"FLEET_WEBHOOK_SECRETS__{SINK_NAME.upper()}": self.secret.get_secret_value(),
        }

    def describe(self) -> tuple[str, str]:
        """The desk's and the sink's lines for the start of the demo (never the key)."""
        desk = (
            f"{OPERATIONS_NAME} {self.operations_phone} (warning: sms, critical: sms + voice)"
            if self.operations_phone
            else "none (with real Twilio, set FLEET_DEMO_OPERATIONS_PHONE)"
        )
        return desk, f"{SINK_NAME} {self.receiver.url} (a receiver checking each signature)"


@dataclass(frozen=True)
class LedgerCount:
    recipient: str
    channel: str
    status: str
    rule: str
    severity: str
    deliveries: int
    alert_phases: int  # distinct (alert, phase): equal to deliveries when none was doubled


@dataclass(frozen=True)
class RecipientsOutcome:
    operations_phone: str
    webhook_url: str
    ledger: list[LedgerCount]
    provider: dict[str, int]  # what the Twilio stand-in received for the desk
    webhook: WebhookTally

    def sent(self, recipient: str, channel: str) -> list[LedgerCount]:
        return [
            c
            for c in self.ledger
            if c.recipient == recipient and c.channel == channel and c.status == "SENT"
        ]

    @property
    def problems(self) -> list[str]:
        found = []
        if self.webhook.bad_signatures:
            found.append(f"{self.webhook.bad_signatures} webhook request(s) with a bad signature")
        if self.webhook.most_per_alert_phase > 1:
            found.append("the webhook acted on one alert phase more than once")
        sms = sum(c.deliveries for c in self.sent(f"ops:{OPERATIONS_NAME}", "sms"))
        if "sms" in self.provider and self.provider["sms"] != sms:
            found.append(
                f"the operations desk received {self.provider['sms']} SMS for {sms} sent "
                "in the ledger"
            )
        return found

    def as_dict(self) -> dict[str, Any]:
        return {
            "operations": {
                "recipient": f"ops:{OPERATIONS_NAME}" if self.operations_phone else None,
                "phone": self.operations_phone or None,
                "provider": self.provider,
            },
            "webhook": {
                "recipient": f"webhook:{SINK_NAME}",
                "url": self.webhook_url,
                "receiver": self.webhook.as_dict(),
            },
            "ledger": [c.__dict__ for c in self.ledger],
            "problems": self.problems,
        }

    def rows(self) -> list[tuple[str, Text]]:
        """The summary's rows: the desk's and the sink's deliveries, by channel, severity and
        rule, and the receiver's verdict on the signatures."""
        rows = []
        desk = f"ops:{OPERATIONS_NAME}"
        if self.operations_phone:
            parts = [
                _by_channel(self.ledger, desk),
                "by severity " + _counted(self.ledger, desk, "severity"),
                "by rule " + _counted(self.ledger, desk, "rule"),
            ]
            if self.provider:
                parts.append(
                    f"the Twilio stand-in received {self.provider.get('sms', 0):,} SMS and "
                    f"{self.provider.get('calls', 0):,} calls for {self.operations_phone}"
                )
            rows.append(("operations", Text("; ".join(parts))))
        w = self.webhook
        line = Text(
            f"{_by_channel(self.ledger, f'webhook:{SINK_NAME}')}; the receiver verified "
            f"{w.processed:,} deliveries ("
            + ", ".join(f"{k} {v:,}" for k, v in w.by_phase.items())
            + "), by severity "
            + (", ".join(f"{k} {v:,}" for k, v in w.by_severity.items()) or "none")
            + ", by rule "
            + (", ".join(f"{k} {v:,}" for k, v in w.by_rule.items()) or "none")
            + f"; redelivered {w.redelivered:,}; "
        )
        line.append(
            f"bad signatures {w.bad_signatures:,}",
            style="red" if w.bad_signatures else "green",
        )
        rows.append(("webhook", line))
        return rows


def _by_channel(ledger: list[LedgerCount], recipient: str) -> str:
    counts: Counter[tuple[str, str]] = Counter()
    for c in ledger:
        if c.recipient == recipient:
            counts[(c.channel, c.status.lower())] += c.deliveries
    return ", ".join(f"{ch} {st} {n:,}" for (ch, st), n in sorted(counts.items())) or "none"


def _counted(ledger: list[LedgerCount], recipient: str, by: str) -> str:
    counts: Counter[str] = Counter()
    for c in ledger:
        if c.recipient == recipient and c.status == "SENT":
            counts[getattr(c, by)] += c.deliveries
    return ", ".join(f"{k} {n:,}" for k, n in sorted(counts.items())) or "none"


_LEDGER_SQL = """
SELECT recipient, channel, status, rule, severity, count(*) AS deliveries,
       count(DISTINCT (alert_id, phase)) AS alert_phases
FROM notification_ledger
WHERE recipient <> 'driver' AND starts_with(vehicle_id, %(prefix)s)
GROUP BY recipient, channel, status, rule, severity
ORDER BY recipient, channel, status, rule, severity"""


def outcome(
    recipients: DemoRecipients,
    *,
    dsn: str,
    schema: str,
    vehicle_prefix: str,
    contract: TwilioContractServer | None,
) -> RecipientsOutcome:
    settings = PostgresSettings(dsn=SecretStr(dsn), schema_name=schema)
    with connect(settings, application_name="fleetpipe-demo", autocommit=True) as conn:
        rows = conn.execute(_LEDGER_SQL, {"prefix": vehicle_prefix}).fetchall()
    ledger = [
        LedgerCount(
            recipient=str(recipient),
            channel=str(channel),
            status=str(status),
            rule=str(rule),
            severity=str(severity),
            deliveries=int(str(deliveries)),
            alert_phases=int(str(alert_phases)),
        )
        for recipient, channel, status, rule, severity, deliveries, alert_phases in rows
    ]
    provider: dict[str, int] = {}
    if contract is not None and recipients.operations_phone:
        phone = recipients.operations_phone
        provider = {
            "sms": sum(m.get("to") == phone for m in contract.contract.messages()),
            "calls": sum(c.get("to") == phone for c in contract.contract.calls()),
        }
    return RecipientsOutcome(
        operations_phone=recipients.operations_phone,
        webhook_url=recipients.receiver.url,
        ledger=ledger,
        provider=provider,
        webhook=recipients.receiver.tally(),
    )
