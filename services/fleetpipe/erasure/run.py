"""One erasure, start to end, for the command line and the console alike.

The order is what keeps a subject's rows from coming back: the audit record is committed first
(the storage writer then leaves the subject's spooled rows out of every Parquet file it rolls),
then every lake layer is rewritten, then the hot store's rows are deleted and the record is
completed in one transaction.
"""

from __future__ import annotations

from typing import Any

from fleetpipe.core.db import PostgresSettings, connect, load_migrations, migrate_when_ready
from fleetpipe.erasure import audit
from fleetpipe.erasure.database import erase_rows
from fleetpipe.erasure.lake import erase_from_lake
from fleetpipe.erasure.subject import Subject
from fleetpipe.lake.store import LakeStore


def migrate(postgres: PostgresSettings, *, application_name: str, timeout_s: float) -> None:
    migrate_when_ready(
        postgres,
        application_name=application_name,
        component=audit.COMPONENT,
        migrations=load_migrations("fleetpipe.erasure"),
        timeout_s=timeout_s,
    )


def erase(
    postgres: PostgresSettings,
    subject: Subject,
    *,
    reason: str,
    requested_by: str,
    store: LakeStore | None,
    application_name: str = "fleetpipe-erase",
) -> dict[str, Any]:
    """Erase ``subject`` from the lake (unless ``store`` is None) and the hot store; returns
    the completed audit record."""
    with connect(postgres, application_name=application_name) as conn:
        started = audit.start(conn, subject, reason=reason, requested_by=requested_by)
        files = erase_from_lake(store, subject) if store is not None else []
        erase_rows(
            conn,
            subject,
            erasure_id=started.erasure_id,
            lake_files=[f.as_record() for f in files],
        )
        return audit.record(conn, started.erasure_id)
