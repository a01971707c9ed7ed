"""The erasure audit as the lake's compaction reads it (``fleetpipe lake compact``): the
compaction builds silver and gold without the erased subjects' rows (see
:mod:`fleetpipe.lake.erased`)."""

from __future__ import annotations

import logging

import psycopg
from pydantic_settings import BaseSettings, SettingsConfigDict

from fleetpipe.core.db import PostgresSettings, connect
from fleetpipe.erasure.audit import recorded_after
from fleetpipe.lake.compaction import CompactionError
from fleetpipe.lake.erased import ErasedSubject, ErasureSource

log = logging.getLogger(__name__)


class AuditErasures:
    """The audit in PostgreSQL; one connection per look (a compaction looks once, then once
    per day it builds)."""

    def __init__(
        self, postgres: PostgresSettings, *, application_name: str = "fleetpipe-lake-compact"
    ) -> None:
        self.postgres = postgres
        self.application_name = application_name

    def recorded_after(self, erasure_id: int) -> list[ErasedSubject]:
        try:
            with connect(self.postgres, application_name=self.application_name) as conn:
                found = recorded_after(conn, erasure_id)
        except psycopg.Error as exc:
            # Compacting without the audit could bring erased rows back: the run stops, and
            # the next one (the CronJob's) does the work.
            raise CompactionError(f"cannot read the erasure audit: {exc}") from exc
        return [
            ErasedSubject(
                erasure_id=e.erasure_id,
                kind=e.subject.kind.value,
                subject_id=e.subject.id,
                erased_at_us=int(e.erased_at.timestamp() * 1_000_000),
            )
            for e in found
        ]


class _Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="FLEET_", env_nested_delimiter="__", frozen=True, extra="ignore"
    )

    # None when no FLEET_POSTGRES__* variable is set.
    postgres: PostgresSettings | None = None


def audit_from_env() -> ErasureSource | None:
    """The audit of the database ``FLEET_POSTGRES__*`` names; None (with a warning) when none
    is named: a lake no erasure ever touches, or a run that cannot honour erasures."""
    settings = _Settings()
    if settings.postgres is None:
        log.warning("no database named (FLEET_POSTGRES__DSN): compacting without the erasure audit")
        return None
    return AuditErasures(settings.postgres)
