"""``fleetpipe lake ...``: the lake's maintenance jobs."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from fleetpipe.lake.compaction import Compactor, HoldAt
from fleetpipe.lake.erased import ErasureSource
from fleetpipe.lake.retention import LakeRetention, expire
from fleetpipe.lake.store import LakeStore, LakeStoreError

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


def compaction_command(
    erasures: Callable[[], ErasureSource | None],
) -> Callable[..., None]:
    """``fleetpipe lake compact``, consulting the erasure audit ``erasures()`` gives (the
    audit is a layer above the lake: the command line composes the two)."""

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
                help="Crash drills: pause this long at --hold-at.",
            ),
        ] = 0,
        hold_at: Annotated[
            HoldAt,
            typer.Option(
                envvar="FLEET_LAKE_COMPACT_HOLD_AT",
                hidden=True,
                help="Crash drills: pause after a day's silver, before its gold (gold), or "
                "after an hour's silver is computed, before it is written (silver).",
            ),
        ] = HoldAt.GOLD,
    ) -> None:
        """Compact bronze into silver (deduplicated, range-checked) and gold (per vehicle-hour
        and per fleet-day), then drop each layer's partitions past its retention. Days whose
        bronze has not changed since the last run are skipped. With FLEET_POSTGRES__DSN, the
        erasure audit is consulted: no erased subject's rows reach silver or gold."""
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
        console = Console()
        store = lake_store(url, path)
        retention = LakeRetention(bronze_days, silver_days, gold_days)
        try:
            compactor = Compactor(
                store, hold_s=hold_ms / 1000, hold_at=hold_at, erasures=erasures()
            )
            report = compactor.run()
            expired = expire(store, retention, now=datetime.now(UTC))
        except LakeStoreError as exc:
            console.print(f"[red]compaction failed:[/red] {exc}")
            raise typer.Exit(1) from exc
        for day in report.compacted:
            console.print(
                f"{day.day}: {len(day.hours_rebuilt)} hour(s) rebuilt, {day.silver_rows} silver"
                f" rows, {day.rejected_rows} rejected, {day.duplicates} duplicates dropped"
                + (
                    f", {day.displaced} row(s) of other hours displaced by earlier copies"
                    if day.displaced
                    else ""
                )
                + (
                    f", built again {day.rebuilt_for_erasures} time(s) for an erasure"
                    if day.rebuilt_for_erasures
                    else ""
                )
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

    return compact_command


def lake_app(erasures: Callable[[], ErasureSource | None]) -> typer.Typer:
    """``fleetpipe lake ...``, its compaction consulting the audit ``erasures()`` gives."""
    app = typer.Typer(
        help="The Parquet lake: bronze (as stored), silver (cleaned) and gold (aggregates).",
        no_args_is_help=True,
    )
    app.command("compact")(compaction_command(erasures))
    return app
