"""One telemetry row per (vehicle, seq) in the hot store, whatever the event's clock says.

``telemetry`` is partitioned by ``event_day``, and PostgreSQL's unique keys on a partitioned
table must include the partition key, so its primary key (vehicle_id, seq, event_day) alone
would store twice the same seq re-sent with an event time on another day (23:59:59.9, then
00:00:00.1). The writer therefore leaves out of each batch, before its COPY:

* a (vehicle, seq) the batch repeats: the first row of the batch is kept;
* a (vehicle, seq) already stored on any day of the hot store: the stored row is kept (first
  stored wins).

The days searched are every partition the hot store has (its retention plus the days kept
ahead): a row outside them is not stored hot at all, so the guarantee holds for the whole hot
store, not only within ingest's event-time window. The bounds are constant per batch, so the
planner prunes the partitions outside them, and the primary-key index serves every probe.

Probing every row would cost an index descent per row and partition. A device counts its seq
up, so the writer keeps, per vehicle it has written since it was given its partitions, the
highest seq stored (its *high-water mark*, read from the database the first time the vehicle is
seen). A vehicle whose seqs in the batch all lie above its mark cannot repeat a stored one and
is not probed: in steady state no batch queries anything but its claim (below). The others — a
vehicle seen for the first time, a replay after a crash, a device re-sending old seqs — are
probed together in one query (``vehicle_id = v AND seq BETWEEN lo AND hi``, a lateral index
scan per vehicle and partition), and only then is the batch filtered. The marks are dropped
when the writer's partitions are revoked: their vehicles are likely another writer's from then
on.

Two writers at once. After the partitions grow, a vehicle's key group
(:mod:`fleetpipe.core.keygroups`) moves to another partition, and for a moment its old owner
and its new one can both hold a copy of the same seq (an ingest retry that straddles the
growth). Each would miss the other's uncommitted row in its probe, and a writer whose mark
says "above" would not probe at all. So each batch first *claims* its key groups, in its own
transaction and before any probe: one ``INSERT … ON CONFLICT DO UPDATE`` into
``telemetry_key_group_writers`` (storage migration 0012), in key-group order, which locks
every group's row until the batch commits and names this writer in the rows that named
another. Hence, whatever the interleaving:

* a second writer of a key group waits at its claim until the first has committed; its probe,
  a later statement (READ COMMITTED), then sees the first one's rows;
* a claim that changed a row's writer returns it: another writer may have stored that group's
  vehicles since this one last did, so their marks are forgotten and they are probed (their
  highest stored seq read afresh, under the lock). A row still naming this writer means nobody
  else wrote the group since, so the marks hold and a fresh batch queries nothing but the claim;
* both writers lock in the same (ascending) order, so neither can hold a group the other waits
  for while waiting for one the other holds: no deadlock between writers.

Why row locks rather than advisory locks: a row lock is kept in the row, not in PostgreSQL's
shared lock table. That table holds max_locks_per_transaction (64) entries per connection, plus
a little slack, for every session at once; a few writers locking thousands of key groups each
could exhaust it, and then any session's next lock fails with "out of shared memory". And the
lock and the name of the writer are the same row, so they cannot disagree. An advisory lock
costs less (about a quarter of the PostgreSQL CPU per group); the claim's cost is one statement
per batch that locks (and WAL-logs the lock of) one row per key group of the batch, at most the
pipeline's key-group count whatever the batch's size. A writer's name is taken
afresh by each process (its memory starts empty), so it never mistakes another writer's rows,
or those of its own earlier life, for its own. Writers of a release without claims (during a
rolling upgrade) are not held off by them; the primary key still stops a same-day copy.
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from itertools import repeat
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from fleetpipe.core.keygroups import KeyGroups

# OFFSET 0 keeps each lateral subquery a subquery: a nested loop driven by the batch's
# vehicles, one parameterized index scan per vehicle and partition. Pulled up into a plain
# join, the planner could choose to hash whole partitions against a handful of vehicles.
_STORED_IN_RANGES = """
SELECT s.vehicle_id, s.seq
FROM unnest(%(vehicles)s::text[], %(low)s::bigint[], %(high)s::bigint[]) AS r(vehicle_id, lo, hi)
CROSS JOIN LATERAL (
    SELECT t.vehicle_id, t.seq FROM telemetry t
    WHERE t.vehicle_id = r.vehicle_id COLLATE "C" AND t.seq BETWEEN r.lo AND r.hi
      AND t.event_day BETWEEN %(first_day)s AND %(last_day)s
    OFFSET 0
) AS s
"""

# The highest seq stored per vehicle: per partition one backward step in the index.
_HIGHEST_STORED = """
SELECT r.vehicle_id, s.seq
FROM unnest(%(vehicles)s::text[]) AS r(vehicle_id)
CROSS JOIN LATERAL (
    SELECT t.seq FROM telemetry t
    WHERE t.vehicle_id = r.vehicle_id COLLATE "C"
      AND t.event_day BETWEEN %(first_day)s AND %(last_day)s
    ORDER BY t.seq DESC LIMIT 1
) AS s
"""

# The batch's key groups, claimed in ascending order (the order their rows are locked in, so two
# writers cannot deadlock): the rows that named another writer (or did not exist) come back.
# Every row is locked until the transaction ends, updated or not.
_CLAIM = """
INSERT INTO telemetry_key_group_writers AS w (key_group, writer)
SELECT g, %(writer)s FROM unnest(%(groups)s::integer[]) AS g ORDER BY g
ON CONFLICT (key_group) DO UPDATE
    SET writer = EXCLUDED.writer, generation = w.generation + 1, claimed_at = now()
    WHERE w.writer <> EXCLUDED.writer
RETURNING key_group
"""

# Vehicles whose mark is remembered before the memory starts over: above the largest fleet a
# writer serves (100K vehicles), far below what would matter (~100 B each).
_MARKS_LIMIT = 1_000_000


class Rows(Protocol):
    def fetchall(self) -> list[Any]: ...


class Statements(Protocol):
    """What the filter needs of a database connection (a psycopg one, in its transaction)."""

    def execute(self, query: str, params: dict[str, Any] | None = None, /) -> Rows: ...


@dataclass(frozen=True)
class NewRows:
    """The rows of a batch to store, and how many were left out as already there."""

    table: pa.Table
    repeated_in_batch: int = 0
    stored_before: int = 0
    # Per vehicle of the batch, its highest seq: the marks once the batch is committed.
    highest: dict[str, int] = field(default_factory=dict)
    # Every vehicle's seqs lay above its mark: each highest seq is its new mark as it is.
    above_marks: bool = False
    # Key groups this writer took over from another writer (or claimed for the first time).
    taken_over: int = 0


def first_of_each_seq(table: pa.Table) -> tuple[pa.Table, int]:
    """``table`` with one row per (vehicle_id, seq), the first; and how many were left out."""
    n = table.num_rows
    keys = pa.table(
        {
            "vehicle_id": table.column("vehicle_id"),
            "seq": table.column("seq"),
            "row": pa.array(np.arange(n, dtype=np.int64)),
        }
    )
    firsts = keys.group_by(["vehicle_id", "seq"], use_threads=False).aggregate([("row", "min")])
    if firsts.num_rows == n:
        return table, 0
    rows = np.sort(firsts.column("row_min").to_numpy())
    return table.take(pa.array(rows)), n - len(rows)


@dataclass(frozen=True)
class SeqRanges:
    """Per vehicle of a batch: its lowest and highest seq; and whether a seq repeats."""

    vehicles: list[str]
    low: npt.NDArray[np.int64]
    high: list[int]
    repeats: bool


def seq_ranges(table: pa.Table) -> SeqRanges:
    """One hash aggregation over the batch's (vehicle_id, seq) columns: C++, no Python per row."""
    keys = pa.table({"vehicle_id": table.column("vehicle_id"), "seq": table.column("seq")})
    grouped = keys.group_by("vehicle_id", use_threads=False).aggregate(
        [("seq", "min"), ("seq", "max"), ("seq", "count_distinct")]
    )
    distinct = pc.sum(grouped.column("seq_count_distinct")).as_py() or 0
    return SeqRanges(
        vehicles=grouped.column("vehicle_id").to_pylist(),
        low=grouped.column("seq_min").to_numpy().astype(np.int64, copy=False),
        high=grouped.column("seq_max").to_pylist(),
        repeats=distinct < table.num_rows,
    )


class StoredSeqs:
    """The high-water marks of the vehicles this writer stores, and the batch filter."""

    def __init__(
        self,
        *,
        writer: str = "storage-writer",
        key_groups: KeyGroups | None = None,
        marks_limit: int = _MARKS_LIMIT,
    ) -> None:
        self._marks: dict[str, int] = {}
        self._marks_limit = marks_limit
        # The vehicles with a mark (or about to get one), by key group: what to forget when
        # another writer has had the group.
        self._members: defaultdict[int, set[str]] = defaultdict(set)
        self._key_groups = key_groups or KeyGroups()
        # Unique to this process, whose memory starts empty (see the module's docstring).
        self.writer = f"{writer}/{secrets.token_hex(8)}"

    def forget(self) -> None:
        """Drop every mark (the partitions were revoked: others may store these vehicles)."""
        self._marks.clear()
        self._members.clear()

    def committed(self, rows: NewRows) -> None:
        """Raise the marks to what the batch of ``rows`` stored (call after its commit)."""
        if len(self._marks) + len(rows.highest) > self._marks_limit:
            # Start over, this batch's vehicles included: they are read again when next seen.
            self.forget()
            return
        marks = self._marks
        if rows.above_marks:
            marks.update(rows.highest)
            return
        for vehicle, seq in rows.highest.items():
            if seq > marks.get(vehicle, 0):
                marks[vehicle] = seq

    def new_rows(self, conn: Statements, table: pa.Table, days: tuple[date, date]) -> NewRows:
        """The rows of ``table`` whose (vehicle_id, seq) is neither earlier in the batch nor
        stored on a day in ``days`` (first and last, inclusive)."""
        ranges = seq_ranges(table)
        unique, repeated = table, 0
        if ranges.repeats:
            unique, repeated = first_of_each_seq(table)
        vehicles = ranges.vehicles
        group = self._key_groups.group
        taken = self.claim(conn, vehicles)
        marks = self._marks
        members = self._members
        for taken_group in taken:
            for vehicle in members.pop(taken_group, ()):
                marks.pop(vehicle, None)
        unseen = list(set(vehicles).difference(marks))
        if unseen:
            for vehicle in unseen:
                members[group(vehicle)].add(vehicle)
            for vehicle, seq in self._query(conn, _HIGHEST_STORED, days, vehicles=unseen):
                marks[str(vehicle)] = int(seq)
        # Only a vehicle with a seq at or below its mark can repeat a stored one.
        known = np.fromiter(map(marks.get, vehicles, repeat(0)), np.int64, len(vehicles))
        probe = np.flatnonzero(ranges.low <= known).tolist()
        highest = dict(zip(vehicles, ranges.high, strict=True))
        if not probe:
            return NewRows(
                unique,
                repeated_in_batch=repeated,
                highest=highest,
                above_marks=True,
                taken_over=len(taken),
            )
        stored = self._query(
            conn,
            _STORED_IN_RANGES,
            days,
            vehicles=[vehicles[i] for i in probe],
            low=[int(ranges.low[i]) for i in probe],
            high=[ranges.high[i] for i in probe],
        )
        if not stored:
            return NewRows(
                unique, repeated_in_batch=repeated, highest=highest, taken_over=len(taken)
            )
        # A replay or a re-send: rare, so a set of the stored keys and a mask built row by
        # row will do.
        found = {(str(v), int(s)) for v, s in stored}
        pairs = zip(
            unique.column("vehicle_id").to_pylist(), unique.column("seq").to_pylist(), strict=True
        )
        keep = pa.array([(v, s) not in found for v, s in pairs], pa.bool_())
        left = unique.filter(keep)
        return NewRows(
            left,
            repeated_in_batch=repeated,
            stored_before=unique.num_rows - left.num_rows,
            highest=highest,
            taken_over=len(taken),
        )

    def claim(self, conn: Statements, vehicles: list[str]) -> list[int]:
        """Lock the key groups of ``vehicles`` until the transaction ends, naming this writer;
        the groups whose row named another writer, or had none."""
        groups = sorted(set(map(self._key_groups.group, vehicles)))
        rows = conn.execute(_CLAIM, {"writer": self.writer, "groups": groups}).fetchall()
        return [int(g) for (g,) in rows]

    @staticmethod
    def _query(
        conn: Statements, statement: str, days: tuple[date, date], **arrays: Any
    ) -> list[tuple[Any, ...]]:
        # A probe of thousands of vehicles over every partition is estimated costly enough
        # for PostgreSQL to compile it (JIT), which takes longer than the index scans it runs.
        conn.execute("SET LOCAL jit = off")
        return conn.execute(
            statement, {**arrays, "first_day": days[0], "last_day": days[1]}
        ).fetchall()
