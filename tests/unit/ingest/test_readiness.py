"""Ingest's topic check and its configuration errors, each said in one line naming the setting."""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from pydantic import ValidationError

from fleetpipe.core.errors import configuration_problem
from fleetpipe.ingest.auth import TokenError, TokenStore
from fleetpipe.ingest.readiness import TopicWatch
from fleetpipe.ingest.settings import AuthSettings, IngestSettings

pytestmark = pytest.mark.unit

TOPICS = [("FLEET_TOPICS__RAW", "raw.v1"), ("FLEET_TOPICS__DEADLETTER", "dlq.v1")]


class FakeAdmin:
    def __init__(self, existing: set[str] | None) -> None:
        self.existing = existing  # None: the cluster cannot be reached

    def partitions(self, topics: Iterable[str] | None = None) -> dict[str, int]:
        if self.existing is None:
            raise RuntimeError("all brokers down")
        return {t: 3 for t in topics or () if t in self.existing}


def _checked(watch: TopicWatch) -> tuple[bool, str | None]:
    return watch.check(), watch.problem


def test_a_missing_topic_is_named_with_its_setting_until_it_exists() -> None:
    admin = FakeAdmin({"dlq.v1"})
    watch = TopicWatch(admin, TOPICS)
    assert watch.check() is True
    assert watch.problem == (
        "topic 'raw.v1' (FLEET_TOPICS__RAW) does not exist: create it or set FLEET_TOPICS__RAW"
    )
    assert watch.check() is False, "said once"
    admin.existing = {"dlq.v1", "raw.v1"}
    assert _checked(watch) == (True, None)


def test_a_cluster_that_cannot_be_listed_is_not_taken_for_a_ready_one() -> None:
    watch = TopicWatch(FakeAdmin(None), TOPICS)
    watch.check()
    assert watch.problem == "cannot list Kafka topics: all brokers down"


def test_a_too_short_token_is_said_in_one_line_naming_the_setting_not_the_token() -> None:
    with pytest.raises(TokenError) as raised:
        TokenStore(AuthSettings(tokens='{"tiny-secret": "fleet-a"}'))  # type: ignore[arg-type]
    line = configuration_problem(raised.value)
    assert "FLEET_AUTH__TOKENS" in line and "at least 16 characters" in line
    assert "tiny-secret" not in line and "\n" not in line


def test_a_bad_setting_is_named_by_its_variable() -> None:
    with pytest.raises(ValidationError) as raised:
        IngestSettings(grpc_port=70_000, auth={"reload_interval_s": 0})  # type: ignore[arg-type]
    line = configuration_problem(raised.value)
    assert "FLEET_GRPC_PORT" in line and "FLEET_AUTH__RELOAD_INTERVAL_S" in line
    assert "\n" not in line


def test_the_lateness_flag_cannot_outlast_the_lateness_bound() -> None:
    with pytest.raises(ValidationError, match="late_after_s must not exceed max_lateness_s"):
        IngestSettings(late_after_s=3600, max_lateness_s=60)
