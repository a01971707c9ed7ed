"""The storage writer expires the small tables' rows past their retention: a quiet vehicle's
latest position, dead letters, settled deliveries (phone numbers); and nothing else."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr

from fleetpipe.core.db import PostgresSettings, load_migrations, migrate_when_ready
from fleetpipe_dev.testing import wait_for
from fleetpipe_loadtest.records import now_us
from support.lakes import events

from .conftest import WriterRig

pytestmark = pytest.mark.integration

LEDGER = """
INSERT INTO notification_ledger (alert_id, phase, channel, status, vehicle_id, driver_key, rule,
    severity, to_address, reference, alert_time, created_at)
VALUES (%s, 'open', 'sms', %s, 'v-1', 'd-1', 'speeding', 'warning', '+15550100', 'r', %s, %s)
"""


def test_rows_past_their_retention_are_deleted_and_the_rest_kept(rig: WriterRig) -> None:
    rig.produce(rig.topics.enriched, events(3, 5, start_us=now_us() - 60_000_000))
    first = rig.start("w1")
    rig.wait_consumed(first)
    assert first.stop() == 0
    migrate_when_ready(
        PostgresSettings(dsn=SecretStr(rig.dsn), schema_name=rig.schema),
        application_name="test",
        component="notification",
        migrations=load_migrations("fleetpipe.notification"),
    )
    now = datetime.now(UTC)
    rig.execute(
        "INSERT INTO vehicle_latest (vehicle_id, seq, event_time, fleet_id, lat, lon, speed_kmh,"
        " heading_deg, ignition, fuel_pct, battery_pct, odometer_km) VALUES"
        f" ('quiet-1', 1, '{now - timedelta(days=40)}', 'fleet-1', 0, 0, 0, 0, false, 0, 0, 0)"
    )
    for offset, days in ((0, 100), (1, 10)):
        rig.execute(
            "INSERT INTO dead_letters (dl_partition, dl_offset, reason, error, service,"
            " source_topic, source_partition, source_offset, payload_bytes, time) VALUES"
            f" (0, {offset}, 'invalid', 'e', 's', 't', 0, 0, 1, '{now - timedelta(days=days)}')"
        )
    old, recent = now - timedelta(days=100), now - timedelta(days=10)
    for alert_id, status, created in (
        ("old-sent", "SENT", old),
        ("old-pending", "PENDING", old),
        ("recent-sent", "SENT", recent),
    ):
        rig.sql(LEDGER + " RETURNING alert_id", alert_id, status, created, created)

    second = rig.start("w2", FLEET_MAINTENANCE_INTERVAL_S="1")

    def expired() -> bool:
        second.check_alive()
        return bool(
            rig.scalar("SELECT count(*) FROM vehicle_latest WHERE vehicle_id = 'quiet-1'") == 0
        )

    wait_for(expired, timeout=60, interval=0.5, what="the expired rows to go")
    assert second.stop() == 0
    assert rig.scalar("SELECT count(*) FROM vehicle_latest") == 3, "the reporting vehicles stay"
    assert rig.sql("SELECT dl_offset FROM dead_letters") == [(1,)]
    assert sorted(rig.sql("SELECT alert_id FROM notification_ledger")) == [
        ("old-pending",),
        ("recent-sent",),
    ]
    assert "retention: deleted 1 expired row(s) from notification_ledger" in second.log()
