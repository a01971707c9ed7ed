"""The storage benchmark's erasure variant: erasures on record for vehicles that are not in
the input, so the hot store's check does its whole work on every batch and leaves out nothing.

Every storage-writer batch holds the erasure lock shared and asks the audit for the erasures
recorded since its last batch (storage_writer/hot_erasures.py); with none ever recorded the
audit table does not exist and the check ends there. With erasures on record that are newer
than the input's data (recorded just before the run), each one is matched against every row of
every batch, and against every spooled row when a spool rolls into Parquet: what an erasure
costs the writer while it still concerns the data arriving.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence

from pydantic import SecretStr

from fleetpipe.core.db import PostgresSettings, connect
from fleetpipe.erasure import audit
from fleetpipe.erasure.run import migrate
from fleetpipe.erasure.subject import Subject, SubjectKind
from fleetpipe_dev.bench.harness import Summary, versus
from fleetpipe_loadtest import synthetic

REASON = "benchmark: erasures on record for vehicles outside the input"


def erasures_label(count: int) -> str:
    return f"storage-writer (PostgreSQL + Parquet, {count} erasures on record)"


def other_vehicles(vehicles: int, count: int, *, fleet: str = "fleet-1") -> list[str]:
    """``count`` vehicle ids of the input's fleet that an input of ``vehicles`` vehicles
    (``fleetpipe_loadtest.records.enriched_stream``) never names: the ones after its last."""
    return [synthetic.vehicle_id(i, fleet) for i in range(vehicles, vehicles + count)]


def record_erasures(dsn: str, schema: str, vehicle_ids: Sequence[str]) -> int:
    """Record a completed erasure of each vehicle in ``schema``'s audit (created if need be),
    as ``fleetpipe erase`` records one; returns how many the audit holds."""
    settings = PostgresSettings(dsn=SecretStr(dsn), schema_name=schema)
    migrate(settings, application_name="fleetpipe-bench", timeout_s=60)
    with connect(settings, application_name="fleetpipe-bench") as conn:
        for vehicle in vehicle_ids:
            started = audit.start(
                conn,
                Subject(SubjectKind.VEHICLE, vehicle),
                reason=REASON,
                requested_by="fleetpipe bench storage-writer",
            )
            with conn.transaction():
                audit.complete(conn, started.erasure_id, rows_deleted={}, lake_files=[])
        row = conn.execute("SELECT count(*) FROM erasure_audit").fetchone()
    count = row[0] if row else 0
    assert isinstance(count, int)
    return count


def erasure_cost(
    checked: Summary,
    plain: Summary,
    server_cpu: Mapping[str, Sequence[float]],
    *,
    erasures: int,
) -> str:
    """The report's sentence on the check's cost: ``checked`` (with erasures on record)
    against ``plain`` (the same writer with none), medians."""
    rate, _, extra = versus(checked, plain)
    sentence = (
        f"The erasure check with {erasures} erasures on record (recorded after the input's "
        "data, of vehicles not in it: each is matched against every row, none is left out) "
        f"costs the writer {extra:+.2f} µs CPU per row against {plain.label} "
        f"(medians; rows/s ratio {rate:.2f})"
    )
    own, base = server_cpu.get(checked.label), server_cpu.get(plain.label)
    if own and base:
        sentence += (
            f", and PostgreSQL {statistics.median(own) - statistics.median(base):+.2f} µs "
            "per row (the shared lock and the audit query of every batch)"
        )
    return sentence + "."
