"""Dead-letter records → rows of the ``dead_letters`` table (pure).

A dead letter is stored with where it sits in the dead-letter topic (its partition and offset:
the table's key, so a replay adds nothing), the reason and error a person triages by, and where
the failed record came from. The failed payload itself stays in Kafka and the lake.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from fleetpipe.core.records import Record
from fleetpipe.pb.v1 import deadletter_pb2

DEAD_LETTER_SCHEMA = pa.schema(
    [
        ("dl_partition", pa.int32()),
        ("dl_offset", pa.int64()),
        ("reason", pa.string()),
        ("error", pa.string()),
        ("service", pa.string()),
        ("source_topic", pa.string()),
        ("source_partition", pa.int32()),
        ("source_offset", pa.int64()),
        ("record_key", pa.string()),
        ("payload_bytes", pa.int32()),
        ("time", pa.timestamp("us", tz="UTC")),
    ]
)

DEAD_LETTER_INSERT = """
INSERT INTO dead_letters (dl_partition, dl_offset, reason, error, service, source_topic,
    source_partition, source_offset, record_key, payload_bytes, time)
VALUES (%(dl_partition)s, %(dl_offset)s, %(reason)s, %(error)s, %(service)s, %(source_topic)s,
    %(source_partition)s, %(source_offset)s, %(record_key)s, %(payload_bytes)s, %(time)s)
ON CONFLICT (dl_partition, dl_offset) DO NOTHING
"""


def _text(raw: bytes | str) -> str:
    # Text columns hold no NUL, and a key is whatever bytes the failed record had.
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    return text.replace("\x00", "\ufffd")


def dead_letter_table(
    records: Sequence[Record[deadletter_pb2.DeadLetter]], *, now_us: int
) -> pa.Table:
    """One row per dead letter; one without a time is stamped ``now_us`` (when it was stored)."""
    rows: list[dict[str, Any]] = []
    for record in records:
        d = record.value
        rows.append(
            {
                "dl_partition": record.partition,
                "dl_offset": record.offset,
                "reason": _text(d.reason) or "unspecified",
                "error": _text(d.error),
                "service": _text(d.service),
                "source_topic": _text(d.source_topic),
                "source_partition": d.source_partition,
                "source_offset": d.source_offset,
                "record_key": _text(d.key) if d.key else None,
                "payload_bytes": len(d.payload),
                "time": d.time_us if d.time_us > 0 else now_us,
            }
        )
    return pa.Table.from_pylist(rows, schema=DEAD_LETTER_SCHEMA)
