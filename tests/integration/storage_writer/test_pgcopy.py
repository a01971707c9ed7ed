"""The binary COPY encoder, checked by PostgreSQL itself."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pyarrow as pa
import pytest

from fleetpipe.storage_writer.pgcopy import CopyColumn, encode
from support.servers import Schema

pytestmark = pytest.mark.integration

COLUMNS = (
    CopyColumn("id", "int8"),
    CopyColumn("name", "text"),
    CopyColumn("small", "int2"),
    CopyColumn("mid", "int4"),
    CopyColumn("ratio", "float4"),
    CopyColumn("value", "float8"),
    CopyColumn("flag", "bool"),
    CopyColumn("day", "date"),
    CopyColumn("at", "timestamptz"),
    CopyColumn("note", "text"),
)
DDL = (
    "CREATE TABLE probe (id bigint, name text, small smallint, mid integer, ratio real, "
    "value double precision, flag boolean, day date, at timestamptz, note text)"
)


def _table(n: int, *, seed: int, nulls: bool) -> pa.Table:
    rng = random.Random(seed)

    def maybe(value: Any) -> Any:
        return None if nulls and rng.random() < 0.2 else value

    base = datetime(2025, 1, 15, tzinfo=UTC)
    return pa.table(
        {
            "id": pa.array(range(n), pa.int64()),
            "name": pa.array(
                [maybe("x" * rng.randint(0, 12) + "é" * rng.randint(0, 2)) for _ in range(n)],
                pa.string(),
            ),
            "small": pa.array([maybe(rng.randint(-32768, 32767)) for _ in range(n)], pa.int16()),
            "mid": pa.array(
                [maybe(rng.randint(-(2**31), 2**31 - 1)) for _ in range(n)], pa.int32()
            ),
            "ratio": pa.array([maybe(rng.random()) for _ in range(n)], pa.float32()),
            "value": pa.array([maybe(rng.uniform(-1e9, 1e9)) for _ in range(n)], pa.float64()),
            "flag": pa.array([maybe(rng.random() < 0.5) for _ in range(n)], pa.bool_()),
            "day": pa.array(
                [
                    maybe(date(2025, 1, 1) + timedelta(days=rng.randint(-9000, 9000)))
                    for _ in range(n)
                ],
                pa.date32(),
            ),
            "at": pa.array(
                [
                    maybe(base + timedelta(microseconds=rng.randint(-(10**15), 10**15)))
                    for _ in range(n)
                ],
                pa.timestamp("us", tz="UTC"),
            ),
            "note": pa.array([None] * n, pa.string()),
        }
    )


@pytest.mark.parametrize(
    ("n", "nulls"),
    [
        pytest.param(1, False, id="one-row"),
        pytest.param(500, False, id="no-nulls"),
        pytest.param(2000, True, id="nulls-and-varying-text"),
    ],
)
def test_postgres_reads_back_exactly_what_was_encoded(
    pg_schema: Schema, n: int, nulls: bool
) -> None:
    table = _table(n, seed=n, nulls=nulls)
    encoded = encode(table, COLUMNS)
    with psycopg.connect(pg_schema.dsn, options=f"-c search_path={pg_schema.name}") as conn:
        conn.execute(DDL)
        with (
            conn.cursor() as cur,
            cur.copy(
                f"COPY probe ({', '.join(encoded.columns)}) FROM STDIN (FORMAT BINARY)"
            ) as copy,
        ):
            copy.write(encoded.data)
        rows = conn.execute(
            "SELECT id, name, small, mid, ratio, value, flag, day, at, note FROM probe ORDER BY id"
        ).fetchall()
    expected = table.to_pylist()
    assert len(rows) == n
    for got, want in zip(rows, expected, strict=True):
        assert got[0] == want["id"] and got[1] == want["name"]
        assert got[2:4] == (want["small"], want["mid"])
        assert got[4] == (None if want["ratio"] is None else pytest.approx(want["ratio"], rel=1e-6))
        assert got[5:10] == (want["value"], want["flag"], want["day"], want["at"], None)
