"""``fleetpipe lake ...``: the lake's maintenance jobs."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from fleetpipe.lake.compaction import Compactor
from fleetpipe.lake.retention import LakeRetention, expire
from fleetpipe.lake.store import LakeStore, LakeStoreError

lake_app = typer.Typer(
    help="The Parquet lake: bronze (as stored), silver (cleaned) and gold (aggregates).",
    no_args_is_help=True,
)

UrlOption = Annotated[
    str,
    typer.Option(
        "--url",
        envvar="FLEET_LAKE__URL",
        help="Where the lake's files are: a folder, or s3://bucket/prefix?endpoint_override=... "
        "(credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY). Default: --path.",
    ),
]
PathOption = Annotated[
    Path,
    typer.Option("--path", envvar="FLEET_LAKE__PATH", help="The lake's local folder."),
]


def lake_store(url: str, path: Path) -> LakeStore:
    return LakeStore.from_url(url or path)


@lake_app.command("compact")
def compact_command(
    url: UrlOption = "",
    path: PathOption = Path("/var/lib/fleetpipe/lake"),
    bronze_days: Annotated[
        float, typer.Option(envvar="FLEET_LAKE__BRONZE_RETENTION_DAYS", min=0.01)
    ] = LakeRetention.bronze_days,
    silver_days: Annotated[
        float, typer.Option(envvar="FLEET_LAKE__SILVER_RETENTION_DAYS", min=0.01)
    ] = LakeRetention.silver_days,
    gold_days: Annotated[
        float, typer.Option(envvar="FLEET_LAKE__GOLD_RETENTION_DAYS", min=0.01)
    ] = LakeRetention.gold_days,
    hold_ms: Annotated[
        int,
        typer.Option(
            envvar="FLEET_LAKE_COMPACT_HOLD_MS",
            hidden=True,
            help="Crash drills: pause after each day's silver, before its gold.",
        ),
    ] = 0,
) -> None:
    """Compact bronze into silver (deduplicated, range-checked) and gold (per vehicle-hour and
    per fleet-day), then drop each layer's partitions past its retention. Days whose bronze
    has not changed since the last run are skipped."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    console = Console()
    store = lake_store(url, path)
    retention = LakeRetention(bronze_days, silver_days, gold_days)
    try:
        report = Compactor(store, hold_s=hold_ms / 1000).run()
        expired = expire(store, retention, now=datetime.now(UTC))
    except LakeStoreError as exc:
        console.print(f"[red]compaction failed:[/red] {exc}")
        raise typer.Exit(1) from exc
    for day in report.compacted:
        console.print(
            f"{day.day}: {len(day.hours_rebuilt)} hour(s) rebuilt, {day.silver_rows} silver rows, "
            f"{day.rejected_rows} rejected, {day.duplicates} duplicates dropped"
        )
    console.print(
        f"{len(report.compacted)} day(s) compacted, {len(report.unchanged)} unchanged"
        + (
            f", {report.leftovers_removed} leftover file(s) removed"
            if report.leftovers_removed
            else ""
        )
        + f"; retention dropped {len(expired.files)} file(s)"
    )
