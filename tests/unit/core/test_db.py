"""Database settings and the migration files the services ship."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from fleetpipe.core.db import Migration, PostgresSettings, load_migrations

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("package", [pytest.param("fleetpipe.notification", id="notification")])
def test_shipped_migrations_are_numbered_from_one_without_gaps(package: str) -> None:
    migrations = load_migrations(package)
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    assert all(m.sql.strip() for m in migrations)


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        pytest.param("fleetpipe", True, id="plain"),
        pytest.param("t_0a1b2c", True, id="test-schema"),
        pytest.param("Fleet", False, id="upper-case"),
        pytest.param("a;drop", False, id="injection"),
        pytest.param("1abc", False, id="leading-digit"),
    ],
)
def test_schema_name_must_be_a_plain_identifier(name: str, ok: bool) -> None:
    if ok:
        assert PostgresSettings(schema_name=name).schema_name == name
    else:
        with pytest.raises(ValidationError, match="schema_name"):
            PostgresSettings(schema_name=name)


def test_the_dsn_is_a_secret() -> None:
    settings = PostgresSettings(dsn=SecretStr("postgresql://u:hunter2@db/x"))
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings.model_dump())


def test_a_checksum_follows_the_sql() -> None:
    assert Migration(1, "a", "SELECT 1").checksum != Migration(1, "a", "SELECT 2").checksum
