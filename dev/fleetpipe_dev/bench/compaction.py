"""The lake compaction's CPU time per row, on a day of bronze of a realistic fleet.

``python -m fleetpipe_dev.bench.compaction --vehicles 50000 --per-hour 2 --resent 0.01``
files one day of bronze telemetry (every vehicle ``--per-hour`` times an hour, in packs of
events on one partition, seq counting up) and a share of it re-sent with a clock an hour later
(higher offsets: later copies), then times, in CPU seconds of this process (user + system,
DuckDB's threads included), three compactions: the whole day, a second run with nothing new,
and a run after a late bronze file lands in one hour. CPU time, not wall time, because the
machine may be shared.
"""

from __future__ import annotations

import resource
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import typer

from fleetpipe.lake import layout
from fleetpipe.lake.compaction import CompactionReport, Compactor
from fleetpipe.lake.store import LakeStore
from fleetpipe.storage_writer import columns
from fleetpipe.storage_writer.lake import Lake, with_lineage
from fleetpipe_loadtest import records

DAY_START_US = 1_767_225_600_000_000  # 2026-01-01 00:00 UTC
US_PER_HOUR = 3_600_000_000
TOPIC = "fleet.telemetry.enriched.v1"
PACK = 64


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _template(vehicles: int, folder: Path) -> pa.Table:
    """One bronze row per vehicle, as the storage writer files it."""
    store = LakeStore.from_url(folder / "template", fsync=False)
    lake = Lake(folder / "spool", instance="bench", store=store, fsync=False, clock=lambda: 1.0e9)
    lake.open()
    made = list(records.enriched_stream(vehicles, vehicles, start_us=DAY_START_US))
    decoded = columns.TelemetryDecoder().decode([m.SerializeToString() for m in made])
    rows = columns.telemetry_rows(decoded)
    n = len(made)
    table = with_lineage(columns.bronze_rows(decoded, rows), np.zeros(n), np.arange(n))
    lake.append("telemetry", table, topic=TOPIC, time_column="event_time")
    lake.close()
    (path, _), *_ = store.files("bronze")
    return store.read_table(path)


def _moved(
    template: pa.Table, *, seq: np.ndarray, event_us: np.ndarray, offsets: np.ndarray
) -> pa.Table:
    """``template``'s rows with another seq, event time (ingest 200 ms after) and offsets."""
    telemetry = template["telemetry"].combine_chunks()
    children = {f.name: telemetry.field(f.name) for f in telemetry.type}
    children["seq"] = pa.array(seq, children["seq"].type)
    children["event_time_us"] = pa.array(event_us, children["event_time_us"].type)
    children["ingest_time_us"] = pa.array(event_us + 200_000, children["ingest_time_us"].type)
    moved = pa.StructArray.from_arrays(list(children.values()), fields=list(telemetry.type))
    out = template.set_column(template.schema.get_field_index("telemetry"), "telemetry", moved)
    out = out.set_column(
        out.schema.get_field_index("event_time"),
        "event_time",
        pa.array(event_us, pa.int64()).cast(out.schema.field("event_time").type),
    )
    return out.set_column(
        out.schema.get_field_index("_kafka_offset"),
        "_kafka_offset",
        pa.array(offsets // PACK, pa.int64()),
    ).set_column(
        out.schema.get_field_index(layout.PACK_INDEX),
        layout.PACK_INDEX,
        pa.array(offsets % PACK, pa.int32()),
    )


def _fill(store: LakeStore, template: pa.Table, per_hour: int, resent: float) -> int:
    """A day of bronze, and the re-sent copies; how many rows."""
    vehicles = template.num_rows
    rng = np.random.default_rng(15)
    offset = 0
    total = 0
    step_us = US_PER_HOUR // per_hour
    for hour in range(24):
        parts = []
        for k in range(per_hour):
            slot = hour * per_hour + k
            event_us = DAY_START_US + slot * step_us + rng.integers(0, step_us, vehicles)
            parts.append(
                _moved(
                    template,
                    seq=np.full(vehicles, slot + 1),
                    event_us=event_us,
                    offsets=offset + np.arange(vehicles),
                )
            )
            offset += vehicles
        if hour and resent:
            # The previous hour's last slot again, a share of it, from clocks an hour ahead.
            last = parts[0].filter(pc.less(pa.array(rng.random(vehicles)), resent))
            telemetry = last["telemetry"].combine_chunks()
            n = last.num_rows
            parts.append(
                _moved(
                    last,
                    seq=np.asarray(telemetry.field("seq")) - 1,
                    event_us=np.asarray(telemetry.field("event_time_us")) - step_us + US_PER_HOUR,
                    offsets=offset + np.arange(n),
                )
            )
            offset += n
        day, hh = layout.hour_dirs(DAY_START_US // US_PER_HOUR + hour)
        hour_table = pa.concat_tables(parts)
        store.write_parquet(hour_table, f"bronze/telemetry/{day}/{hh}/part-bench-0.parquet")
        total += hour_table.num_rows
    return total


def _timed(run: Callable[[], CompactionReport]) -> tuple[float, float, int]:
    """CPU and wall seconds of ``run``, and the silver rows it wrote."""
    cpu, wall = _cpu_s(), time.monotonic()
    report = run()
    spent = _cpu_s() - cpu, time.monotonic() - wall
    return spent[0], spent[1], sum(day.silver_rows for day in report.compacted)


def main(
    vehicles: Annotated[int, typer.Option(min=1)] = 50_000,
    per_hour: Annotated[int, typer.Option(min=1, help="Events per vehicle and hour.")] = 2,
    resent: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of an hour's rows re-sent an hour on.")
    ] = 0.01,
) -> None:
    """Print the compaction's CPU seconds and microseconds per bronze row."""
    with tempfile.TemporaryDirectory(prefix="compaction-bench-") as tmp:
        folder = Path(tmp)
        template = _template(vehicles, folder)
        store = LakeStore.from_url(folder / "lake", fsync=False)
        rows = _fill(store, template, per_hour, resent)
        first = _timed(Compactor(store).run)
        second = _timed(Compactor(store).run)
        late = _moved(
            template.slice(0, max(1, vehicles // 100)),
            seq=np.full(max(1, vehicles // 100), 24 * per_hour + 1),
            event_us=np.full(max(1, vehicles // 100), DAY_START_US + 23 * US_PER_HOUR + 1),
            offsets=10**9 + np.arange(max(1, vehicles // 100)),
        )
        day, hh = layout.hour_dirs(DAY_START_US // US_PER_HOUR + 23)
        store.write_parquet(late, f"bronze/telemetry/{day}/{hh}/part-bench-1.parquet")
        third = _timed(Compactor(store).run)
    print(f"bronze rows: {rows} ({vehicles} vehicles, {per_hour}/h, {resent:.2%} re-sent)")
    for name, (cpu, wall, silver) in (
        ("whole day", first),
        ("again, nothing new", second),
        ("a late file in one hour", third),
    ):
        print(
            f"{name:>24}: {cpu:8.2f} s CPU ({cpu / rows * 1e6:6.2f} us/bronze row),"
            f" {wall:7.2f} s wall, {silver} silver rows written"
        )


if __name__ == "__main__":
    typer.run(main)
