"""Migrating waits for the database on the clock, then gives up with the project's error."""

from __future__ import annotations

import logging
import time

import pytest
from pydantic import SecretStr

from fleetpipe.core.db import DatabaseUnavailable, Migration, PostgresSettings, migrate_when_ready
from fleetpipe_dev.stack.procs import free_port

pytestmark = pytest.mark.integration


def test_migrating_waits_for_an_unreachable_database_then_gives_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Nothing listens on the port: every attempt is refused at once, so only the waits count.
    settings = PostgresSettings(dsn=SecretStr(f"postgresql://fleetpipe@127.0.0.1:{free_port()}/x"))
    started = time.monotonic()
    with (
        caplog.at_level(logging.WARNING, logger="fleetpipe.core.db"),
        pytest.raises(DatabaseUnavailable, match="PostgreSQL unavailable"),
    ):
        migrate_when_ready(
            settings,
            application_name="test",
            component="c",
            migrations=[Migration(1, "a", "SELECT 1")],
            timeout_s=1.0,
        )
    assert time.monotonic() - started >= 1.0, "it waited out its timeout"
    assert any("Retrying" in r.getMessage() for r in caplog.records), "it tried more than once"
