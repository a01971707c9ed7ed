"""Where the lake's Parquet files live: a local folder or an S3-compatible bucket, behind one
pyarrow filesystem.

A location is a URL: a plain path (``/var/lib/fleetpipe/lake``) or
``s3://bucket/prefix?endpoint_override=http://minio:9000&region=us-east-1``, whose query
options are pyarrow's ``S3FileSystem`` options. Credentials come from the standard
``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` variables (a Kubernetes Secret), never from
the URL.

Every write is all-or-nothing to a reader: on a local disk the file is written to a hidden
temporary name beside its final one, fsynced and renamed; an object store makes an object
visible only once its upload completes, so the final key is written directly. Readers (pyarrow
datasets, DuckDB, :meth:`LakeStore.files`) skip names that start with ``.`` or ``_``.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from fleetpipe.core.errors import FleetPipeError

HIDDEN_PREFIXES = (".", "_")


class LakeStoreError(FleetPipeError):
    """The lake's files cannot be read or written (location, permissions, network, disk)."""


@dataclass(frozen=True)
class ParquetOptions:
    compression: str = "zstd"
    row_group_size: int = 128 * 1024


class LakeStore:
    """Files under one base folder of one filesystem; every path given or returned is relative
    to the base, with ``/`` separators."""

    def __init__(self, fs: pafs.FileSystem, base: str, *, url: str, fsync: bool = True) -> None:
        self.fs = fs
        self.base = base.rstrip("/")
        self.url = url
        self.fsync = fsync
        self.local = isinstance(fs, pafs.LocalFileSystem)

    @classmethod
    def from_url(cls, url: str | Path, *, fsync: bool = True) -> LakeStore:
        text = str(url)
        if "://" not in text:
            path = Path(text).absolute()
            return cls(pafs.LocalFileSystem(), path.as_posix(), url=path.as_posix(), fsync=fsync)
        try:
            fs, base = pafs.FileSystem.from_uri(text)
        except (pa.ArrowInvalid, OSError, ValueError) as exc:
            raise LakeStoreError(f"cannot open the lake location {_public(text)}: {exc}") from exc
        return cls(fs, base, url=_public(text), fsync=fsync)

    def full(self, relative: str) -> str:
        return posixpath.join(self.base, relative) if relative else self.base

    # -- writing -------------------------------------------------------------------------------
    def write_parquet(
        self,
        table: pa.Table,
        relative: str,
        *,
        options: ParquetOptions | None = None,
    ) -> None:
        """Write ``table`` as one Parquet file at ``relative``, replacing any file there, so a
        reader sees the old file or the new one, whole."""
        options = options or ParquetOptions()
        # Dictionaries only for strings (ids, zones, topics): on measurements and flags they
        # cost more CPU than they save once zstd has had its turn.
        strings = [f.name for f in table.schema if pa.types.is_string(f.type)]

        def write(path: str) -> None:
            pq.write_table(
                table,
                path,
                filesystem=self.fs,
                compression=options.compression,
                use_dictionary=strings,
                row_group_size=options.row_group_size,
            )

        self._atomically(relative, write)

    def write_bytes(self, relative: str, data: bytes) -> None:
        def write(path: str) -> None:
            with self.fs.open_output_stream(path) as out:
                out.write(data)

        self._atomically(relative, write)

    def _atomically(self, relative: str, write: Callable[[str], None]) -> None:
        final = self.full(relative)
        try:
            if not self.local:
                # An object store has no folders to create, and an object appears whole.
                write(final)
                return
            self.fs.create_dir(posixpath.dirname(final), recursive=True)
            head, name = posixpath.split(final)
            tmp = posixpath.join(head, f".{name}.tmp")
            write(tmp)
            if self.fsync:
                _fsync(tmp)
            os.replace(tmp, final)
            if self.fsync:
                _fsync(head)
        except OSError as exc:
            raise LakeStoreError(f"cannot write {relative} under {self.url}: {exc}") from exc

    # -- reading -------------------------------------------------------------------------------
    def read_bytes(self, relative: str) -> bytes | None:
        """The file's bytes; ``None`` when there is no such file."""
        path = self.full(relative)
        try:
            with self.fs.open_input_stream(path) as source:
                data: bytes = source.read()
                return data
        except FileNotFoundError:
            return None
        except OSError as exc:
            if self._missing(path):
                return None
            raise LakeStoreError(f"cannot read {relative} under {self.url}: {exc}") from exc

    def files(self, relative: str, *, suffix: str = ".parquet") -> list[tuple[str, int]]:
        """Every file under ``relative`` (recursively) ending in ``suffix``, sorted, with its
        size; below ``relative``, hidden names (``.``, ``_``) are left out."""
        selector = pafs.FileSelector(self.full(relative), recursive=True, allow_not_found=True)
        try:
            infos = self.fs.get_file_info(selector)
        except OSError as exc:
            raise LakeStoreError(f"cannot list {relative} under {self.url}: {exc}") from exc
        found = []
        for info in infos:
            if info.type != pafs.FileType.File or not info.path.endswith(suffix):
                continue
            rel = posixpath.relpath(info.path, self.base)
            inside = posixpath.relpath(info.path, self.full(relative))
            if any(part.startswith(HIDDEN_PREFIXES) for part in inside.split("/")):
                continue
            found.append((rel, int(info.size or 0)))
        return sorted(found)

    def dataset(self, relatives: Sequence[str], *, schema: pa.Schema | None = None) -> ds.Dataset:
        return ds.dataset(
            [self.full(r) for r in relatives], schema=schema, filesystem=self.fs, format="parquet"
        )

    def read_table(self, relative: str) -> pa.Table:
        try:
            return pq.read_table(self.full(relative), filesystem=self.fs)
        except OSError as exc:
            raise LakeStoreError(f"cannot read {relative} under {self.url}: {exc}") from exc

    def exists(self, relative: str) -> bool:
        path = self.full(relative)
        try:
            return bool(self.fs.get_file_info(path).type == pafs.FileType.File)
        except OSError as exc:
            raise LakeStoreError(f"cannot look for {relative} under {self.url}: {exc}") from exc

    def delete(self, relative: str) -> bool:
        """Remove one file; False when it was not there."""
        path = self.full(relative)
        try:
            self.fs.delete_file(path)
        except FileNotFoundError:
            return False
        except OSError as exc:
            if self._missing(path):
                return False
            raise LakeStoreError(f"cannot delete {relative} under {self.url}: {exc}") from exc
        return True

    def remove_leftovers(self, relative: str) -> int:
        """Delete the hidden temporary files a killed writer left under ``relative`` (local
        disks only: an object store never shows an unfinished upload)."""
        if not self.local:
            return 0
        removed = 0
        root = Path(self.full(relative))
        if root.is_dir():
            for tmp in root.rglob(".*.tmp"):
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
                    removed += 1
        return removed

    def _missing(self, path: str) -> bool:
        try:
            return bool(self.fs.get_file_info(path).type == pafs.FileType.NotFound)
        except OSError:
            return False


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _public(url: str) -> str:
    """The URL without its query, which may name an endpoint's options: for messages."""
    return url.split("?", 1)[0]
