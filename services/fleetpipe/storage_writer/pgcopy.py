"""PostgreSQL's binary COPY format, built from Arrow columns with numpy: no Python per row.

A binary COPY stream is a header, then per row a field count (int16) and per field a length
(int32, -1 for NULL) followed by the value in network byte order, then a trailer (int16 -1).
Building it row by row in Python costs microseconds per row; here every column is converted in
one vectorized step and the rows are assembled with a single gather:

* fixed-width columns without NULLs in the batch, and columns that are NULL in every row, have
  the same layout in every row: they form a prefix built as one numpy structured array;
* the other columns (text, and fixed-width columns with some NULLs) are described as segments
  (a length header, then the payload) and the bytes of every row are gathered from one source
  buffer with ``np.repeat``-computed indices.

When every column is in the prefix (no text column of varying length, no partial NULLs), the
structured array *is* the COPY data. The columns are emitted in the order the encoder chooses,
and :attr:`EncodedCopy.columns` names them for the ``COPY table (columns…)`` statement.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
TRAILER = b"\xff\xff"
PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 in Unix microseconds
PG_EPOCH_DAYS = 10_957  # 2000-01-01 in days since 1970-01-01

# PostgreSQL type -> (payload width in bytes, big-endian numpy dtype) for fixed-width types.
FIXED: dict[str, tuple[int, str]] = {
    "int8": (8, ">i8"),
    "int4": (4, ">i4"),
    "int2": (2, ">i2"),
    "float8": (8, ">f8"),
    "float4": (4, ">f4"),
    "bool": (1, "u1"),
    "date": (4, ">i4"),
    "timestamptz": (8, ">i8"),
}
TEXT_TYPES = frozenset({"text"})


@dataclass(frozen=True, slots=True)
class CopyColumn:
    """A table column and its PostgreSQL type; the Arrow column of the same name feeds it.

    Arrow types expected: timestamptz ← timestamp[us] (or int64 Unix µs), date ← date32 (or
    int32 days since 1970), bool ← bool, numbers ← a numeric type that casts safely, text ←
    string.
    """

    name: str
    pg_type: str

    def __post_init__(self) -> None:
        if self.pg_type not in FIXED and self.pg_type not in TEXT_TYPES:
            raise ValueError(f"column {self.name}: unsupported type {self.pg_type}")


@dataclass(frozen=True, slots=True)
class EncodedCopy:
    columns: tuple[str, ...]
    data: bytes
    rows: int


def _fixed_values(array: pa.Array, pg_type: str) -> npt.NDArray[np.generic]:
    """The column's values as a big-endian numpy array (NULL slots hold zeros)."""
    width, dtype = FIXED[pg_type]
    if pg_type == "timestamptz":
        raw = array.cast(pa.int64()) if array.type != pa.int64() else array
        values = _to_numpy(raw, np.int64) - PG_EPOCH_US
    elif pg_type == "date":
        raw = array.cast(pa.int32()) if array.type != pa.int32() else array
        values = _to_numpy(raw, np.int32) - PG_EPOCH_DAYS
    elif pg_type == "bool":
        values = _to_numpy(array.cast(pa.uint8()), np.uint8)
    else:
        values = _to_numpy(array, np.dtype(dtype).newbyteorder("="))
    del width
    return values.astype(dtype, copy=False)


def _to_numpy(array: pa.Array, dtype: np.dtype[np.generic] | type) -> npt.NDArray[np.generic]:
    if array.null_count:
        array = array.fill_null(0)
    out: npt.NDArray[np.generic] = array.to_numpy(zero_copy_only=False)
    return out.astype(dtype, copy=False)


def _text_parts(
    array: pa.Array,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.uint8]]:
    """(start offsets, lengths with -1 for NULL, data bytes) of a string array."""
    if array.type == pa.large_string():
        array = array.cast(pa.string())
    if not pa.types.is_string(array.type):
        array = array.cast(pa.string())
    n = len(array)
    buffers = array.buffers()
    offsets = np.frombuffer(buffers[1], dtype=np.int32, count=n + 1, offset=array.offset * 4)
    data_buffer = buffers[2]
    data = (
        np.frombuffer(data_buffer, dtype=np.uint8)
        if data_buffer is not None and data_buffer.size
        else np.zeros(0, np.uint8)
    )
    starts = offsets[:-1].astype(np.int64)
    lengths = (offsets[1:] - offsets[:-1]).astype(np.int64)
    if array.null_count:
        valid = array.is_valid().to_numpy(zero_copy_only=False)
        lengths = np.where(valid, lengths, -1)
    return starts, lengths, data


@dataclass(slots=True)
class _Field:
    """One column of the batch, ready to lay out: per-row payload lengths and their source."""

    name: str
    width: int  # fixed payload width, or 0 for text
    lengths: npt.NDArray[np.int64] | None  # per row (-1 NULL); None: the same in every row
    constant_length: int  # when lengths is None: the length of every row (-1: all NULL)
    values: npt.NDArray[np.generic] | None  # fixed-width values (big-endian), row-aligned
    text_starts: npt.NDArray[np.int64] | None  # text: where each row's bytes start in text_data
    text_data: npt.NDArray[np.uint8] | None


def _field(array: pa.Array, col: CopyColumn, n: int) -> _Field:
    nulls = array.null_count
    if nulls == n:
        return _Field(col.name, 0, None, -1, None, None, None)
    if col.pg_type in FIXED:
        width = FIXED[col.pg_type][0]
        values = _fixed_values(array, col.pg_type)
        if nulls == 0:
            return _Field(col.name, width, None, width, values, None, None)
        valid = array.is_valid().to_numpy(zero_copy_only=False)
        lengths = np.where(valid, width, -1).astype(np.int64)
        return _Field(col.name, width, lengths, 0, values, None, None)
    starts, lengths, data = _text_parts(array)
    first = int(lengths[0])
    if (lengths == first).all():
        return _Field(col.name, 0, None, first, None, starts, data)
    return _Field(col.name, 0, lengths, 0, None, starts, data)


def encode(table: pa.Table | pa.RecordBatch, columns: Sequence[CopyColumn]) -> EncodedCopy:
    """The binary COPY data of ``table``'s rows for ``columns``."""
    n = table.num_rows
    names = tuple(c.name for c in columns)
    if n == 0:
        return EncodedCopy(names, HEADER + TRAILER, 0)
    fields = []
    for col in columns:
        array = table.column(col.name)
        if isinstance(array, pa.ChunkedArray):
            array = array.combine_chunks()
        fields.append(_field(array, col, n))
    varying = [f for f in fields if f.lengths is not None]
    if not varying:
        return EncodedCopy(names, HEADER + _layout(fields, None, {}).tobytes() + TRAILER, n)
    # Rows whose varying fields have the same lengths share one layout: lay each group out
    # as a structured array. Real batches have few groups (ids of a few lengths).
    keys = _group_keys([f.lengths for f in varying if f.lengths is not None])
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    bounds = np.flatnonzero(np.diff(sorted_keys)) + 1
    chunks = [HEADER]
    for rows in np.split(order, bounds):
        first = int(rows[0])
        group_lengths = {id(f): int(f.lengths[first]) for f in varying if f.lengths is not None}
        chunks.append(_layout(fields, rows, group_lengths).tobytes())
    chunks.append(TRAILER)
    return EncodedCopy(names, b"".join(chunks), n)


def _group_keys(lengths: list[npt.NDArray[np.int64]]) -> npt.NDArray[np.int64]:
    """One int64 per row that is equal exactly when all the row's varying lengths are."""
    bits = 63 // len(lengths)
    limit = 1 << bits
    if all(int(length.max()) + 1 < limit for length in lengths):
        key = np.zeros(len(lengths[0]), dtype=np.int64)
        for length in lengths:
            key = (key << bits) | (length + 1)
        return key
    # Too long to pack: number the distinct length vectors instead (a sort, but rare).
    _, inverse = np.unique(np.stack(lengths, axis=1), axis=0, return_inverse=True)
    return inverse.astype(np.int64).ravel()


def _layout(
    fields: list[_Field], rows: npt.NDArray[np.int64] | None, group_lengths: dict[int, int]
) -> npt.NDArray[np.uint8]:
    """The rows (all of them when ``rows`` is None) of one layout, as bytes.

    Every row starts as a copy of a template holding the field count and every length header;
    each payload is then copied in as fixed-size items at a fixed stride, already in network
    byte order, so numpy moves bytes and converts nothing.
    """
    m = len(rows) if rows is not None else _row_count(fields)
    template = bytearray(struct.pack(">h", len(fields)))
    payloads: list[tuple[int, int, npt.NDArray[Any]]] = []  # (offset, width, items)
    for f in fields:
        length = group_lengths.get(id(f), f.constant_length)
        template += struct.pack(">i", length)
        if length <= 0:
            continue
        if f.values is not None:
            items = f.values if rows is None else f.values[rows]
        else:
            assert f.text_starts is not None and f.text_data is not None
            starts = f.text_starts if rows is None else f.text_starts[rows]
            items = f.text_data[starts[:, None] + np.arange(length)]
        payloads.append((len(template), length, items))
        template += bytes(length)
    width = len(template)
    out = np.empty((m, width), dtype=np.uint8)
    out[:] = np.frombuffer(bytes(template), dtype=np.uint8)
    flat = out.reshape(-1)
    for offset, length, items in payloads:
        void = np.dtype(f"V{length}")
        target = np.ndarray((m,), dtype=void, buffer=flat, offset=offset, strides=(width,))
        target[...] = np.ascontiguousarray(items).view(void).reshape(m)
    return flat


def _row_count(fields: list[_Field]) -> int:
    for f in fields:
        if f.values is not None:
            return len(f.values)
        if f.text_starts is not None:
            return len(f.text_starts)
    raise ValueError("cannot lay out rows whose every column is NULL without a row count")
