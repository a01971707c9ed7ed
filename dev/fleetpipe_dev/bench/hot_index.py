"""What the hot store's primary key costs PostgreSQL per telemetry row, as a day partition fills.

The storage writer's own write path for telemetry (``HotStore.write``: the key-group claim, the
high-water marks, the binary COPY; the latest positions, which the writer upserts every few
seconds whatever the rows, are left out) stores a fleet's events second by second
into a fresh schema, in batches as the writer makes them; nothing else runs. PostgreSQL's CPU
(the postmaster and every process it started, exited ones included) is read around each batch
and reported per slice of the fill. The variant without the primary key is a measurement only:
the key is what makes a (vehicle, seq) unique and serves the per-vehicle traces, and the writer
probes it for vehicles it has not seen; here every vehicle is new once, in the first seconds.
The third variant, also a measurement only, has no key either and keeps each vehicle's highest
stored seq in a small table instead (read for vehicles the writer has not seen, raised in each
batch's transaction, beside the same claim and COPY): what one replacement of the key would cost.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Annotated

import psycopg
import pyarrow as pa
import typer
from psycopg import sql
from pydantic import SecretStr
from rich.console import Console

from fleetpipe.core.db import PostgresSettings
from fleetpipe.core.keygroups import KeyGroups
from fleetpipe.storage_writer import columns
from fleetpipe.storage_writer.columns import TELEMETRY_COPY
from fleetpipe.storage_writer.database import HotStore, WriteBatch
from fleetpipe.storage_writer.duplicates import StoredSeqs, seq_ranges
from fleetpipe.storage_writer.partitions import hot_window
from fleetpipe.storage_writer.pgcopy import encode
from fleetpipe_dev.bench.harness import RunResult
from fleetpipe_dev.bench.session import BenchSession
from fleetpipe_dev.bench.storage import server_cpu_s
from fleetpipe_dev.cliopts import Report
from fleetpipe_dev.stack.devstack import DevStack, DevStackSettings
from fleetpipe_loadtest import records

WITH_KEY = "with the primary key (as shipped)"
WITHOUT_KEY = "without it (measurement only)"
MARKS_TABLE = "a marks table instead (measurement only)"
VARIANTS = (WITH_KEY, WITHOUT_KEY, MARKS_TABLE)

# The marks-table variant: no key on telemetry; each vehicle's highest stored seq in a small
# table of its own (a HOT update per vehicle and batch), read for the vehicles the writer has
# not seen, raised in the batch's transaction.
_MARKS_TABLE = (
    'CREATE TABLE telemetry_marks (vehicle_id text COLLATE "C" PRIMARY KEY, '
    "high bigint NOT NULL) WITH (fillfactor = 50)"
)
_READ_MARKS = (
    "SELECT vehicle_id, high FROM telemetry_marks WHERE vehicle_id = ANY(%(vehicles)s::text[])"
)
_RAISE_MARKS = """
INSERT INTO telemetry_marks AS m (vehicle_id, high)
SELECT * FROM unnest(%(vehicles)s::text[], %(high)s::bigint[])
ON CONFLICT (vehicle_id) DO UPDATE SET high = EXCLUDED.high WHERE m.high < EXCLUDED.high
"""


class MarksTableStore:
    """The marks-table variant's write: the same claim and binary COPY as the writer's, the
    marks from and to ``telemetry_marks`` instead of the key's index."""

    def __init__(self, dsn: str, schema: str) -> None:
        self._conn = psycopg.connect(dsn, autocommit=True, options=f"-c search_path={schema}")
        self._conn.execute(_MARKS_TABLE)
        self._seqs = StoredSeqs(writer=f"bench-{schema}")
        self._marks: dict[str, int] = {}
        self._copy = sql.SQL("COPY telemetry ({}) FROM STDIN (FORMAT BINARY)").format(
            sql.SQL(", ").join(sql.Identifier(c.name) for c in TELEMETRY_COPY)
        )

    def write(self, table: pa.Table) -> int:
        ranges = seq_ranges(table)
        conn = self._conn
        with conn.transaction():
            self._seqs.claim(conn, ranges.vehicles)
            unseen = [v for v in ranges.vehicles if v not in self._marks]
            if unseen:
                for vehicle, high in conn.execute(_READ_MARKS, {"vehicles": unseen}):
                    self._marks[vehicle] = high
            with conn.cursor() as cur, cur.copy(self._copy) as copy:
                copy.write(encode(table, TELEMETRY_COPY).data)
            conn.execute(_RAISE_MARKS, {"vehicles": ranges.vehicles, "high": ranges.high})
        self._marks.update(zip(ranges.vehicles, ranges.high, strict=True))
        return int(table.num_rows)

    def close(self) -> None:
        self._conn.close()


@dataclass
class Fill:
    """One run of one variant: rows stored and the server's CPU, per slice of the fill."""

    label: str
    slice_rows: int
    rows: list[int] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)
    wall_s: list[float] = field(default_factory=list)

    def us_per_row(self) -> list[float]:
        return [c / r * 1e6 for c, r in zip(self.cpu_s, self.rows, strict=True) if r]

    def overall(self) -> float:
        return sum(self.cpu_s) / max(sum(self.rows), 1) * 1e6


def batches_of(vehicles: int, seconds: int, batch_rows: int) -> Iterator[WriteBatch]:
    """The fleet's events in arrival order, as the writer's batches (decoded once, reused)."""
    decoder = columns.TelemetryDecoder()
    stream = records.enriched_stream(vehicles, vehicles * seconds)
    while True:
        payloads = [e.SerializeToString() for _, e in zip(range(batch_rows), stream, strict=False)]
        if not payloads:
            return
        table = columns.telemetry_rows(decoder.decode(payloads)).table
        yield WriteBatch(telemetry=table)


def fill(
    dsn: str,
    batches: list[WriteBatch],
    *,
    label: str,
    schema: str,
    slice_rows: int,
    server_cpu: Callable[[], float],
) -> Fill:
    """Store ``batches`` into a fresh ``schema`` (dropped afterwards), every row checked."""
    settings = PostgresSettings(dsn=SecretStr(dsn), schema_name=schema)
    store = HotStore(settings, application_name=f"bench-{schema}", key_groups=KeyGroups())
    store.migrate()
    # Today's partition and the days around it, as the writer's maintenance makes them.
    store.maintain(
        hot_window(datetime.now(UTC), retention_days=3, ahead_days=2), events_retention_days=90
    )
    if label != WITH_KEY:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'ALTER TABLE "{schema}".telemetry DROP CONSTRAINT telemetry_pkey')
    marks = MarksTableStore(dsn, schema) if label == MARKS_TABLE else None
    filled = Fill(label, slice_rows)
    rows = 0
    cpu0, wall0 = server_cpu(), time.monotonic()
    try:
        for batch in batches:
            assert batch.telemetry is not None
            stored = (
                marks.write(batch.telemetry)
                if marks is not None
                else store.write(batch).telemetry_rows
            )
            if stored != batch.telemetry.num_rows:
                raise RuntimeError(f"{label}: stored {stored} of a batch")
            rows += stored
            if rows >= slice_rows:
                cpu1, wall1 = server_cpu(), time.monotonic()
                filled.rows.append(rows)
                filled.cpu_s.append(cpu1 - cpu0)
                filled.wall_s.append(wall1 - wall0)
                rows, cpu0, wall0 = 0, cpu1, wall1
        if rows:
            filled.rows.append(rows)
            filled.cpu_s.append(server_cpu() - cpu0)
            filled.wall_s.append(time.monotonic() - wall0)
    finally:
        store.close()
        if marks is not None:
            marks.close()
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    return filled


def run_hot_index_bench(
    stack: DevStack,
    *,
    vehicles: int,
    seconds: int,
    batch_rows: int,
    runs: int,
    report: Path,
    console: Console,
) -> dict[str, list[Fill]]:
    session = BenchSession.start(stack, name="hot", partitions=1, report=report, console=console)
    console.print(f"encoding {vehicles * seconds:,} events ({vehicles:,} vehicles × {seconds} s)")
    batches = list(batches_of(vehicles, seconds, batch_rows))
    slice_rows = vehicles * max(seconds // 5, 1)
    fills: dict[str, list[Fill]] = {label: [] for label in VARIANTS}
    for run in range(1, runs + 1):
        # Alternating the variants spreads the machine's drift over both.
        for n, label in enumerate(fills):
            one = fill(
                stack.postgres_dsn,
                batches,
                label=label,
                schema=f"bench_{session.suffix}_{run}_{n}",
                slice_rows=slice_rows,
                server_cpu=partial(server_cpu_s, stack),
            )
            fills[label].append(one)
            console.print(
                f"run {run}/{runs} {label:<36} {one.overall():5.2f} µs/row; by slice "
                + " ".join(f"{u:.2f}" for u in one.us_per_row())
            )
    _write_report(session, fills, vehicles=vehicles, seconds=seconds, batch_rows=batch_rows)
    console.print(f"report: {report}")
    return fills


def _write_report(
    session: BenchSession,
    fills: dict[str, list[Fill]],
    *,
    vehicles: int,
    seconds: int,
    batch_rows: int,
) -> None:
    slices = min(len(f.rows) for runs in fills.values() for f in runs)
    slice_rows = next(iter(fills.values()))[0].slice_rows
    step = slice_rows // vehicles
    head = " | ".join(f"{i * step}–{(i + 1) * step} s" for i in range(slices))
    md = [
        *session.heading("What the hot store's primary key costs PostgreSQL per row"),
        " ".join((__doc__ or "").split("\n\n", 1)[1].split()),
        "",
        f"{vehicles:,} vehicles at 1 Hz for {seconds} s ({vehicles * seconds:,} rows into one "
        f"day partition), batches of {batch_rows:,} rows. PostgreSQL's CPU µs per row, median "
        "of the runs, per slice of the fill (by the seconds of the fleet's events) and over all "
        "of it; the rate is the writes' (the "
        "client's encoding included, Kafka not involved):",
        "",
        f"| variant | {head} | all rows | rows/s |",
        "| --- |" + " ---: |" * (slices + 2),
    ]
    results: dict[str, list[RunResult]] = {}
    for label, runs in fills.items():
        per_slice = [statistics.median(f.us_per_row()[i] for f in runs) for i in range(slices)]
        overall = statistics.median(f.overall() for f in runs)
        results[label] = [RunResult(label, sum(f.rows), sum(f.wall_s), sum(f.cpu_s)) for f in runs]
        rate = statistics.median(r.events_per_s for r in results[label])
        cells = " | ".join(f"{u:.2f}" for u in per_slice)
        md.append(f"| {label} | {cells} | {overall:.2f} | {rate:,.0f} |")
    md.append("")
    session.write_report(
        md,
        results,
        fields={
            "vehicles": vehicles,
            "seconds": seconds,
            "batch_rows": batch_rows,
            "slices": {
                label: [{"rows": f.rows, "cpu_s": f.cpu_s, "wall_s": f.wall_s} for f in runs]
                for label, runs in fills.items()
            },
        },
        digits=2,
    )


def command(
    vehicles: Annotated[
        int, typer.Option(min=1, help="vehicles, one event a second each")
    ] = 28_000,
    seconds: Annotated[int, typer.Option(min=5, help="seconds of the fleet's events")] = 300,
    batch_rows: Annotated[
        int, typer.Option(min=100, help="rows per write (a writer's batch)")
    ] = 5_000,
    runs: Annotated[int, typer.Option(min=1, max=20, help="runs; medians are reported")] = 3,
    report: Report = Path("benchmarks/reports/hot-index.md"),
) -> None:
    """What the hot store's primary key costs PostgreSQL per telemetry row, as a day partition
    fills (the storage writer's write path, without Kafka)."""
    run_hot_index_bench(
        DevStack(DevStackSettings()),
        vehicles=vehicles,
        seconds=seconds,
        batch_rows=batch_rows,
        runs=runs,
        report=report,
        console=Console(),
    )
