"""``fleetpipe erase --vehicle V | --driver D --reason TEXT``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from pydantic_settings import BaseSettings, SettingsConfigDict

from fleetpipe.core.db import DatabaseUnavailable, PostgresSettings
from fleetpipe.core.errors import ConfigError
from fleetpipe.core.operators import OPERATOR_ENV, operator_name
from fleetpipe.erasure.run import erase, migrate
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
    by: Annotated[
        str,
        typer.Option(
            "--by",
            envvar=OPERATOR_ENV,
            help="Who asks (kept in the audit log); default: the system's name for the user.",
        ),
    ] = "",
) -> None:
    """Erase one vehicle's or one driver's data from PostgreSQL and every lake layer, and
    record the erasure (what, why, when, how much) in the audit log."""
    try:
        subject = subject_of(vehicle=vehicle, driver=driver, reason=reason)
        requested_by = operator_name(by)
        settings = _Settings()
        migrate(settings.postgres, application_name="fleetpipe-erase", timeout_s=30)
        record = erase(
            settings.postgres,
            subject,
            reason=reason,
            requested_by=requested_by,
            store=LakeStore.from_url(url or path) if lake else None,
        )
    except (ErasureError, LakeStoreError, ConfigError, DatabaseUnavailable) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(json.dumps(record, indent=2))
