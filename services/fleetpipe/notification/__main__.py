"""``python -m fleetpipe.notification`` / ``fleetpipe-notification``: wiring only.

Configured by ``FLEET_*`` variables (see settings.py); the Twilio credentials and the database
DSN come from a Secret through the environment.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from fleetpipe.core.codecs import ProtoCodec
from fleetpipe.core.loop import Handler, LoopConfig
from fleetpipe.core.metrics import Metrics
from fleetpipe.core.service import loop_config, run_loop_service
from fleetpipe.core.settings import DeliveryMode
from fleetpipe.notification.handler import DeliveryConfig, NotificationHandler, NotificationMetrics
from fleetpipe.notification.ledger import Ledger
from fleetpipe.notification.provider import TwilioGateway, twilio_client
from fleetpipe.notification.routing import Channel
from fleetpipe.notification.settings import NotificationSettings
from fleetpipe.notification.webhook import WebhookGateway
from fleetpipe.notification.webhook_delivery import WebhookRetry
from fleetpipe.pb.v1 import alert_pb2
from fleetpipe.registry import RegistryWatcher, VehicleRegistry


def main() -> None:
    settings = NotificationSettings()  # type: ignore[call-arg]  # twilio comes from the env

    def build(metrics: Metrics) -> tuple[LoopConfig, Handler]:
        own = NotificationMetrics(metrics.registry)
        ledger = Ledger(
            settings.postgres,
            application_name=f"notification-{settings.instance_id}",
            seconds=own.ledger_seconds,
        )
        # The database may still be starting: migrate() waits for it rather than crash-loop.
        ledger.migrate()
        registry = RegistryWatcher(
            settings.registry_path, check_interval_s=settings.registry_check_interval_s
        )

        def contacts() -> VehicleRegistry:
            registry.maybe_reload()
            return registry.current

        tw = settings.twilio
        client = twilio_client(
            tw.account_sid,
            tw.auth_token.get_secret_value(),
            api_base_url=tw.api_base_url,
            timeout_s=tw.timeout_s,
        )
        delivery = DeliveryConfig(
            policy=settings.routing,
            senders={c: tw.sender(c) for c in Channel if c.by_phone},
            tz=ZoneInfo(settings.timezone),
            attempts=settings.retry.attempts,
            initial_backoff_s=settings.retry.initial_backoff_s,
            max_backoff_s=settings.retry.max_backoff_s,
            deadline_s=settings.retry.deadline_s,
            reconcile_skew_s=settings.reconcile_skew_s,
            reconcile_scan_limit=settings.reconcile_scan_limit,
            hold_s=settings.hold_ms / 1000,
            recipients=settings.recipients,
            webhook_retry=WebhookRetry(
                attempts=settings.webhook_retry.attempts,
                initial_backoff_s=settings.webhook_retry.initial_backoff_s,
                max_backoff_s=settings.webhook_retry.max_backoff_s,
                deadline_s=settings.webhook_retry.deadline_s,
            ),
        )
        handler = NotificationHandler(
            config=delivery,
            contacts=contacts,
            ledger=ledger,
            gateway=TwilioGateway(client),
            webhooks=WebhookGateway(settings.webhook_secrets),
            outcomes_topic=settings.topics.notifications,
            metrics=own,
            shared=metrics,
        )
        config = loop_config(
            "notification",
            settings,
            group_id=settings.group_id,
            inputs={settings.topics.alerts: ProtoCodec(alert_pb2.Alert)},
            mode=DeliveryMode.AT_LEAST_ONCE,
            max_batch=min(settings.kafka.max_batch, settings.max_batch),
        )
        return config, handler

    run_loop_service("notification", settings, build)


if __name__ == "__main__":
    main()
