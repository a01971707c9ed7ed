"""The lake's test helpers: the session's S3-compatible server, lake locations on it or on a
local folder, and bronze written in this process the way the storage writer writes it."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.fs as pafs

from fleetpipe.lake.store import LakeStore
from fleetpipe.pb.v1 import enriched_pb2
from fleetpipe.storage_writer import columns
from fleetpipe.storage_writer.lake import PACK_INDEX_COLUMN, Lake, with_lineage
from fleetpipe_dev.stack.objectstore import S3Server
from fleetpipe_loadtest import records


@dataclass
class S3Handle:
    server: S3Server

    def client(self) -> pafs.S3FileSystem:
        return pafs.S3FileSystem(
            access_key=S3Server.credentials["AWS_ACCESS_KEY_ID"],
            secret_key=S3Server.credentials["AWS_SECRET_ACCESS_KEY"],
            endpoint_override=self.server.endpoint,
            scheme="http",
            region=S3Server.region,
            allow_bucket_creation=True,
        )

    def new_bucket(self) -> str:
        """A fresh bucket; its lake location (a prefix in it)."""
        bucket = f"lake-{uuid.uuid4().hex[:12]}"
        self.client().create_dir(bucket)
        return self.server.url(bucket, "lake")


@dataclass
class LakeLocations:
    """Fresh lake locations of one kind: folders under a test's tmp_path, or S3 buckets."""

    kind: str
    folder: Path
    s3: S3Handle | None = None

    def new(self) -> str:
        if self.s3 is not None:
            return self.s3.new_bucket()
        path = self.folder / f"lake-{uuid.uuid4().hex[:8]}"
        return str(path)


def events(
    vehicles: int,
    per_vehicle: int,
    *,
    start_us: int,
    fleet: str = "fleet-1",
    seq_after: int = 0,
) -> list[enriched_pb2.EnrichedTelemetry]:
    """Enriched events, one a second per vehicle, whose battery, speed, ignition and zone vary,
    so every gold aggregate has something to count. Each vehicle's seq counts up from
    ``seq_after + 1``: a later batch of the same vehicles passes the last seq of the one
    before, or its events are the same events again."""
    made = list(
        records.enriched_stream(vehicles, vehicles * per_vehicle, fleet=fleet, start_us=start_us)
    )
    for i, e in enumerate(made):
        e.telemetry.seq += seq_after
        e.telemetry.fleet_id = e.vehicle.fleet_id = fleet
        e.telemetry.battery.pct = 20 + (i * 7) % 80
        e.telemetry.motion.speed_kmh = float((i * 13) % 120)
        e.telemetry.engine.ignition = (e.telemetry.seq // 5) % 3 != 0
        e.geohash6 = ("u173zq", "u173zr", "u173zw")[(e.telemetry.seq // 7) % 3]
    return made


def write_bronze(
    store: LakeStore,
    spool_root: Path,
    messages: Sequence[enriched_pb2.EnrichedTelemetry],
    *,
    topic: str = "fleet.telemetry.enriched.v1",
    partition: int = 0,
    first_offset: int = 0,
    instance: str = "w1",
    events_per_record: int = 1,
    pack_index: bool = True,
) -> None:
    """Append ``messages`` to bronze as the storage writer does (records at consecutive offsets
    of one partition, ``events_per_record`` events to a record: packs when more than one) and
    roll them into Parquet. A fixed clock names the files, so the same call writes the same
    files. Without ``pack_index`` the file is one written before the position in a pack was
    kept: it has no such column."""
    lake = Lake(
        spool_root,
        instance=instance,
        store=store,
        fsync=False,
        clock=lambda: 1.0e9 + first_offset,
    )
    lake.open()
    decoded = columns.TelemetryDecoder().decode([m.SerializeToString() for m in messages])
    rows = columns.telemetry_rows(decoded)
    assert not rows.invalid, rows.invalid
    n = len(messages)
    table = with_lineage(
        columns.bronze_rows(decoded, rows),
        np.full(n, partition),
        first_offset + np.arange(n) // events_per_record,
        pack_indexes=np.arange(n) % events_per_record,
    )
    if not pack_index:
        table = table.drop_columns([PACK_INDEX_COLUMN])
    lake.append("telemetry", table, topic=topic, time_column="event_time")
    lake.close()


def compact_process(url: str, *, hold_ms: int = 0) -> subprocess.Popen[bytes]:
    """``fleetpipe lake compact`` of ``url`` as its own process (a crash drill kills it), paused
    ``hold_ms`` after each day's silver, before its gold."""
    return subprocess.Popen(
        [sys.executable, "-m", "fleetpipe.cli", "lake", "compact", "--url", url],
        env={
            **os.environ,
            "FLEET_LAKE_COMPACT_HOLD_MS": str(hold_ms),
            # The drills' days are in January 2025: past the default bronze retention, which
            # would delete the bronze files under a reader. Compaction alone is under test.
            "FLEET_LAKE__BRONZE_RETENTION_DAYS": "36500",
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
