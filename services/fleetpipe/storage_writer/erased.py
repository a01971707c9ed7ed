"""Keeping erased subjects' rows that are still in a writer's spools out of the lake.

An erasure rewrites the lake's files, but rows of the subject may still sit in a writer's local
spools (appended before the erasure, rolled into Parquet after it), or still be on their way in
Kafka. So every roll asks the erasure audit which erasures started since the spool's oldest
moment, and leaves out the rows of their subjects that are from before the erasure: appended
before it started (give or take ``MARGIN_S`` for the clocks of two hosts), or about a time before
it (their event time: a backlog delivered late). The subject's new data is kept.

The audit is asked again once the file is written: an erasure recorded in between (after the
first look, before the file was visible to the erasure's own scan of the lake) is applied by
rewriting the file, so no interleaving lets a row through.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np
import psycopg
import pyarrow as pa
from tenacity import (
    Retrying,
    before_sleep_log,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential_jitter,
)

from fleetpipe.core.db import PostgresSettings, connect
from fleetpipe.erasure.audit import Erasure, started_since
from fleetpipe.erasure.lake import subject_rows

log = logging.getLogger(__name__)

# Rows appended up to this long after an erasure started still count as before it: the writer's
# clock and the database's may differ by seconds.
MARGIN_S = 60.0


class ErasureLogError(Exception):
    """The erasure audit cannot be read (the database does not answer)."""


class ErasureLog(Protocol):
    def started_since(self, since: float) -> list[Erasure]: ...


class PostgresErasureLog:
    """The audit in PostgreSQL, read on the writer's converter thread (one connection, opened
    when first needed and again after a failure)."""

    def __init__(
        self, settings: PostgresSettings, *, application_name: str, timeout_s: float = 60.0
    ) -> None:
        self.settings = settings
        self.application_name = application_name
        self.timeout_s = timeout_s
        self._conn: psycopg.Connection[Any] | None = None

    def started_since(self, since: float) -> list[Erasure]:
        def attempt() -> list[Erasure]:
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = connect(
                        self.settings, application_name=self.application_name, autocommit=True
                    )
                return started_since(self._conn, datetime.fromtimestamp(since, UTC))
            except psycopg.Error as exc:
                # A lost connection, a server restarting, a role without the grant: asked
                # again for a while, then the roll fails and its spool waits on disk.
                self.close()
                raise ErasureLogError(f"cannot read the erasure audit: {exc}") from exc

        retrying = Retrying(
            retry=retry_if_exception_type(ErasureLogError),
            wait=wait_exponential_jitter(multiplier=0.5, max=5),
            stop=stop_after_delay(self.timeout_s),
            reraise=True,
            before_sleep=before_sleep_log(log, logging.WARNING),
        )
        return retrying(attempt)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def append_times(appends: Sequence[tuple[int, float]], rows: int) -> np.ndarray[Any, Any]:
    """Per row, when it was appended: ``appends`` holds (rows so far, time) after each append.
    A torn last batch makes ``rows`` fewer than appended; those rows are not there."""
    times = np.empty(rows, dtype=np.float64)
    start = 0
    for end, at in appends:
        times[start : min(end, rows)] = at
        start = end
        if start >= rows:
            break
    if start < rows:
        # Rows no append accounts for (never expected): treat them as the latest.
        times[start:] = appends[-1][1] if appends else 0.0
    return times


def row_moments(
    table: pa.Table, appended: np.ndarray[Any, Any], time_column: str
) -> np.ndarray[Any, Any]:
    """Per row, in seconds since the epoch, the moment an erasure must start after for the row
    to be kept: the earlier of its append (less the clocks' margin) and its own time."""
    moments = appended - MARGIN_S
    if time_column and time_column in table.column_names:
        micros = table.column(time_column).cast(pa.int64()).to_numpy(zero_copy_only=False)
        # A row without a time (null: NaN here) goes by its append alone.
        moments = np.fmin(moments, micros / 1e6)
    return moments


def erased_rows(
    table: pa.Table, moments: np.ndarray[Any, Any], erasures: Iterable[Erasure]
) -> np.ndarray[Any, Any] | None:
    """Which rows of ``table`` belong to an erased subject and are from before its erasure
    (None: no erasure concerns the table)."""
    drop: np.ndarray[Any, Any] | None = None
    for erasure in erasures:
        mask = subject_rows(table, erasure.subject)
        if mask is None:
            continue
        hits = mask.to_numpy(zero_copy_only=False) & (moments <= erasure.erased_at.timestamp())
        drop = hits if drop is None else drop | hits
    return drop
