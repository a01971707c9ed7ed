"""The load test's watchers on the real broker: group lag from outside, and the alerts tail."""

from __future__ import annotations

import pytest

from fleetpipe.core.settings import KafkaSettings, Topics
from fleetpipe.pb.v1 import alert_pb2
from fleetpipe_dev.testing import commit_to_end, produce_all, produce_packed, wait_for
from fleetpipe_loadtest.observe import AlertWatcher, GroupLag

pytestmark = pytest.mark.integration


def test_group_lag_counts_every_record_until_the_group_commits_the_end(
    kafka_settings: KafkaSettings, topics: Topics
) -> None:
    produce_all(kafka_settings, topics.enriched, ((f"v{i}", b"x") for i in range(120)))
    group = f"watch-{topics.enriched}"
    watch = GroupLag(kafka_settings, group, topics.enriched)
    try:
        # -1 while the group coordinator (new on a fresh broker) cannot answer yet.
        wait_for(lambda: watch.lag() >= 0, timeout=60, what="the group coordinator")
        assert watch.lag() == 120
        assert watch.committed() == 0

        assert commit_to_end(kafka_settings, group, topics.enriched) == 120

        assert watch.lag() == 0
        assert watch.committed() == 120
    finally:
        watch.close()


def test_group_lag_in_events_on_a_topic_of_packs(
    kafka_settings: KafkaSettings, topics: Topics
) -> None:
    """Lag on a packed topic is counted in events: records × the run's events per record."""
    watch = GroupLag(kafka_settings, f"watch-{topics.raw}", topics.raw)
    try:
        # One vehicle: one partition, so every pack but the last holds exactly 100 events.
        packs = produce_packed(
            kafka_settings, topics.raw, (("v1", b"x") for _ in range(1000)), events_per_pack=100
        )
        assert packs == 10
        wait_for(lambda: watch.lag() >= 0, timeout=60, what="the group coordinator")
        assert watch.lag() == 10
        assert watch.lag_events(1000) == 1000
        assert watch.events_per_record() == 100
        assert commit_to_end(kafka_settings, watch.group, topics.raw) == 10
        assert watch.lag_events(1000) == 0
    finally:
        watch.close()


def _alert(vehicle_id: str, rule: str) -> bytes:
    return alert_pb2.Alert(
        vehicle_id=vehicle_id, rule=rule, state=alert_pb2.ALERT_STATE_OPEN
    ).SerializeToString()


def test_the_alert_watcher_counts_this_runs_alerts_written_after_it_started(
    kafka_settings: KafkaSettings, topics: Topics
) -> None:
    produce_all(kafka_settings, topics.alerts, [(b"run1-1", _alert("run1-1", "speeding"))])
    watcher = AlertWatcher(kafka_settings, topics.alerts, "run1")
    try:
        produce_all(
            kafka_settings,
            topics.alerts,
            [
                (b"run1-2", _alert("run1-2", "speeding")),
                (b"run1-3", _alert("run1-3", "low_fuel")),
                (b"other-1", _alert("other-1", "speeding")),
            ],
        )
        tally = wait_for(
            lambda: (tally := watcher.update()).total >= 2 and tally,
            timeout=30,
            what="the run's two new alerts",
        )
        assert tally.as_dict() == {"low_fuel": {"OPEN": 1}, "speeding": {"OPEN": 1}}
    finally:
        watcher.close()
