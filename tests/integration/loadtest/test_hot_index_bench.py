"""The hot-index benchmark's fill on the real PostgreSQL: every variant stores every row (the
writer's own store, or the marks-table variant's), slice by slice, and leaves no schema behind."""

from __future__ import annotations

import uuid
from itertools import count
from typing import Any

import psycopg
import pytest

from fleetpipe_dev.bench.hot_index import VARIANTS, batches_of, fill

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("label", VARIANTS)
def test_a_fill_stores_every_row_slice_by_slice_and_drops_its_schema(
    postgres: Any, label: str
) -> None:
    batches = list(batches_of(200, 10, 500))  # 2,000 rows in batches of 500
    assert [b.telemetry.num_rows for b in batches if b.telemetry is not None] == [500] * 4
    schema = f"t_{uuid.uuid4().hex[:12]}"
    ticks = count()
    filled = fill(
        postgres.dsn,
        batches,
        label=label,
        schema=schema,
        slice_rows=1000,
        server_cpu=lambda: float(next(ticks)),
    )
    assert filled.rows == [1000, 1000]
    assert filled.cpu_s == [1.0, 1.0]
    assert filled.us_per_row() == [1000.0, 1000.0]
    with psycopg.connect(postgres.dsn) as conn:
        left = conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname = %s", (schema,))
        assert left.fetchone() == (0,)
