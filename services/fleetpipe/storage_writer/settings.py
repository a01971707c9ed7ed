"""Storage-writer settings: ``FLEET_*`` variables, nested with ``__``."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from fleetpipe.core.db import PostgresSettings
from fleetpipe.core.settings import ServiceSettings


class Input(StrEnum):
    ENRICHED = "enriched"
    ALERTS = "alerts"
    TRIPS = "trips"
    SCORES = "scores"
    DEADLETTER = "deadletter"
    KPIS = "kpis"


class LakeSettings(BaseModel):
    """The Parquet cold path (a mounted volume in Kubernetes)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    # The local folder: the spools and the writer's state, and the Parquet files unless url
    # says otherwise.
    path: Path = Path("/var/lib/fleetpipe/lake")
    # Where the Parquet files go when not under path: s3://bucket/prefix?endpoint_override=...
    # for an S3-compatible store (credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY).
    url: str = ""
    # A file is closed when it has this many rows, this many MiB of spool, or is this old.
    max_file_rows: int = Field(default=1_000_000, ge=1)
    max_file_mib: int = Field(default=256, ge=1)
    max_file_age_s: float = Field(default=300.0, gt=0)
    # fsync each batch's spool append before its offsets are committed: survives a power cut,
    # not only a process crash.
    fsync: bool = True
    compression: Literal["zstd", "snappy", "gzip", "none"] = "zstd"


class StorageSettings(ServiceSettings):
    group_id: str = "fleetpipe-storage-writer"
    inputs: tuple[Input, ...] = (
        Input.ENRICHED,
        Input.ALERTS,
        Input.TRIPS,
        Input.SCORES,
        Input.DEADLETTER,
        Input.KPIS,
    )
    postgres: PostgresSettings = PostgresSettings()
    lake: LakeSettings = LakeSettings()
    # Telemetry stays hot this long (the reference keeps 3 days in its time-series store).
    hot_retention_days: float = Field(default=3.0, gt=0)
    partitions_ahead_days: int = Field(default=2, ge=1, le=31)
    # Alert episodes, trips and scores are small: kept much longer.
    events_retention_days: float = Field(default=90.0, gt=0)
    # A vehicle's latest position once it has gone quiet, a dead letter's row, a settled
    # delivery in the notifier's ledger (a phone number): kept this long.
    latest_retention_days: float = Field(default=30.0, gt=0)
    dead_letters_retention_days: float = Field(default=90.0, gt=0)
    ledger_retention_days: float = Field(default=90.0, gt=0)
    maintenance_interval_s: float = Field(default=600.0, gt=0)
    # The latest-position table is refreshed at most this often (every batch when 0).
    latest_interval_s: float = Field(default=5.0, ge=0)
    # Big batches: one COPY and one commit per batch.
    max_batch: int = Field(default=10_000, ge=1, le=100_000)
    # How long a batch gathers (the loop's poll timeout for this service). With packs a batch
    # never fills up by records (a few hundred packs hold the whole input), so this is what
    # sizes a batch: the database and the consumer pay per COPY, commit and fetch, and the
    # stored latency target (2 s) leaves room. None: Kafka's poll timeout.
    batch_wait_s: float | None = Field(default=None, gt=0, le=5)
    # Fault injection for crash drills: hold each batch after the database commit and the
    # spool append, before the offsets are committed.
    hold_ms: int = Field(default=0, ge=0)
    # The vehicle registry (the file enrichment reads): the vehicles table follows it. None:
    # the table is left as it is.
    registry_path: Path | None = None
    registry_check_interval_s: float = Field(default=5.0, gt=0)
