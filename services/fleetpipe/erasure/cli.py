"""``fleetpipe erase --vehicle V | --driver D --reason TEXT``."""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Annotated

import typer
from pydantic_settings import BaseSettings, SettingsConfigDict

from fleetpipe.core.db import PostgresSettings, connect, load_migrations, migrate_when_ready
from fleetpipe.erasure.database import erase_rows
from fleetpipe.erasure.lake import erase_from_lake
from fleetpipe.erasure.subject import ErasureError, subject_of
from fleetpipe.lake.store import LakeStore, LakeStoreError


class _Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="FLEET_", env_nested_delimiter="__", frozen=True, extra="ignore"
    )

    postgres: PostgresSettings = PostgresSettings()


def erase_command(
    reason: Annotated[
        str, typer.Option("--reason", help="Why (a request's reference); kept in the audit log.")
    ] = "",
    vehicle: Annotated[str, typer.Option("--vehicle", help="Erase this vehicle.")] = "",
    driver: Annotated[str, typer.Option("--driver", help="Erase this driver.")] = "",
    url: Annotated[
        str, typer.Option("--url", envvar="FLEET_LAKE__URL", help="The lake's location.")
    ] = "",
    path: Annotated[
        Path, typer.Option("--path", envvar="FLEET_LAKE__PATH", help="The lake's local folder.")
    ] = Path("/var/lib/fleetpipe/lake"),
    lake: Annotated[bool, typer.Option("--lake/--no-lake", help="Erase from the lake too.")] = True,
) -> None:
    """Erase one vehicle's or one driver's data from PostgreSQL and every lake layer, and
    record the erasure (what, why, when, how much) in the audit log."""
    try:
        subject = subject_of(vehicle=vehicle, driver=driver, reason=reason)
        settings = _Settings()
        migrate_when_ready(
            settings.postgres,
            application_name="fleetpipe-erase",
            component="erasure",
            migrations=load_migrations("fleetpipe.erasure"),
            timeout_s=30,
        )
        files = erase_from_lake(LakeStore.from_url(url or path), subject) if lake else []
        with connect(settings.postgres, application_name="fleetpipe-erase") as conn:
            erasure_id, deleted = erase_rows(
                conn,
                subject,
                reason=reason,
                requested_by=getpass.getuser(),
                lake_files=[f.as_record() for f in files],
            )
    except (ErasureError, LakeStoreError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(
        json.dumps(
            {
                "erasure_id": erasure_id,
                "subject": {"kind": subject.kind.value, "id": subject.id},
                "rows_deleted": deleted,
                "lake_files": [f.as_record() for f in files],
            },
            indent=2,
        )
    )
