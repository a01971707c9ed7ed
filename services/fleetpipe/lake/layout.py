"""The lake's layers and where each table's files go (pure).

::

    bronze/<table>/dt=YYYY-MM-DD/hour=HH/part-<spool>.parquet   every record as it arrived
    silver/telemetry/dt=YYYY-MM-DD/hour=HH/part-0.parquet         deduplicated, range-checked
    silver/rejected/dt=YYYY-MM-DD/hour=HH/part-0.parquet          what silver dropped, and why
    gold/vehicle_hour/dt=YYYY-MM-DD/part-0.parquet                per vehicle and hour
    gold/fleet_day/dt=YYYY-MM-DD/part-0.parquet                   per fleet and day
    _compaction/telemetry/dt=YYYY-MM-DD.json                      what the outputs were built from
    _compaction/keys/telemetry/dt=YYYY-MM-DD.parquet              silver's keys (lake.keys)
    _compaction/seq_ranges/telemetry/dt=YYYY-MM-DD.parquet        each vehicle's seqs of the day

Bronze files are written by the storage writer, one per spool; the compacted layers hold one
file per partition, rewritten whole when its inputs change, so replacing it is one atomic step.
"""

from __future__ import annotations

import re
import time

BRONZE = "bronze"
SILVER = "silver"
GOLD = "gold"
MANIFESTS = "_compaction"
COMPACTED_FILE = "part-0.parquet"

# A bronze row's place in its Kafka record (an event of a pack: its position; many events share
# a pack's offset). The other coordinates are ``_kafka_topic``, ``_kafka_partition`` and
# ``_kafka_offset``; files written before the position was kept lack this column.
PACK_INDEX = "_kafka_pack_index"

_HOUR_DIR = re.compile(r"^dt=(\d{4}-\d{2}-\d{2})/hour=(\d{2})/")
US_PER_HOUR = 3_600_000_000


def bronze(table: str) -> str:
    return f"{BRONZE}/{table}"


def hour_dirs(hour: int) -> tuple[str, str]:
    """``("dt=YYYY-MM-DD", "hour=HH")`` of an hour counted from the epoch."""
    t = time.gmtime(hour * 3600)
    return time.strftime("dt=%Y-%m-%d", t), time.strftime("hour=%H", t)


def day_and_hour(relative_to_table: str) -> tuple[str, str] | None:
    """``("YYYY-MM-DD", "HH")`` of a file path relative to its table folder; ``None`` for a
    path outside the date/hour layout."""
    match = _HOUR_DIR.match(relative_to_table)
    return None if match is None else (match.group(1), match.group(2))


def silver_hour(table: str, day: str, hour: str) -> str:
    return f"{SILVER}/{table}/dt={day}/hour={hour}/{COMPACTED_FILE}"


def gold_day(table: str, day: str) -> str:
    return f"{GOLD}/{table}/dt={day}/{COMPACTED_FILE}"


def manifest(table: str, day: str) -> str:
    return f"{MANIFESTS}/{table}/dt={day}.json"
