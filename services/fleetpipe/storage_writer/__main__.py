"""``python -m fleetpipe.storage_writer`` / ``fleetpipe-storage-writer``: wiring only.

Configured by ``FLEET_*`` variables (see settings.py); the database DSN comes from a Secret
through the environment.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from fleetpipe.core.codecs import ProtoCodec, RawCodec
from fleetpipe.core.keygroups import KeyGroups
from fleetpipe.core.loop import Handler, LoopConfig
from fleetpipe.core.metrics import Metrics
from fleetpipe.core.packs import PackCodec
from fleetpipe.core.service import loop_config, run_loop_service
from fleetpipe.core.settings import DeliveryMode
from fleetpipe.lake.store import LakeStore
from fleetpipe.pb.v1 import alert_pb2, deadletter_pb2, enriched_pb2, kpi_pb2, trip_pb2
from fleetpipe.registry import RegistryWatcher
from fleetpipe.storage_writer.analytics import AnalyticsStore
from fleetpipe.storage_writer.analytics_handler import AnalyticsHandler, AnalyticsMetrics
from fleetpipe.storage_writer.database import HotStore, RowRetention
from fleetpipe.storage_writer.erased import PostgresErasureLog
from fleetpipe.storage_writer.handler import (
    StorageHandler,
    StorageMetrics,
    StoragePolicy,
    StorageTopics,
)
from fleetpipe.storage_writer.lake import Lake
from fleetpipe.storage_writer.settings import Input, StorageSettings

log = logging.getLogger(__name__)


def main() -> None:
    settings = StorageSettings()
    lakes: list[Lake] = []

    def build(metrics: Metrics) -> tuple[LoopConfig, Handler]:
        store = HotStore(
            settings.postgres,
            application_name=f"storage-writer-{settings.instance_id}",
            key_groups=KeyGroups(settings.kafka.key_groups),
        )
        # The database may still be starting: migrate() waits for it rather than crash-loop.
        store.migrate()
        lake = None
        if settings.lake.enabled:
            lake = Lake(
                settings.lake.path,
                instance=settings.instance_id,
                store=LakeStore.from_url(
                    settings.lake.url or settings.lake.path, fsync=settings.lake.fsync
                ),
                max_rows=settings.lake.max_file_rows,
                max_bytes=settings.lake.max_file_mib * 2**20,
                max_age_s=settings.lake.max_file_age_s,
                fsync=settings.lake.fsync,
                compression=settings.lake.compression,
                # Spooled rows of a subject erased meanwhile stay out of the lake.
                erasures=PostgresErasureLog(
                    settings.postgres,
                    application_name=f"storage-writer-{settings.instance_id}-erasures",
                ),
            )
            lake.open()
            lakes.append(lake)
        topics = StorageTopics(
            telemetry=settings.topics.enriched,
            alerts=settings.topics.alerts,
            trips=settings.topics.trips,
            scores=settings.topics.scores,
            deadletter=settings.topics.deadletter if Input.DEADLETTER in settings.inputs else "",
        )
        codecs: dict[Input, tuple[str, ProtoCodec[Any]]] = {
            # Decoded a batch at a time by the handler (ptars), not record by record.
            # Packs and single records alike: one record per event.
            Input.ENRICHED: (
                topics.telemetry,
                PackCodec(RawCodec(enriched_pb2.EnrichedTelemetry)),
            ),
            Input.ALERTS: (topics.alerts, ProtoCodec(alert_pb2.Alert)),
            Input.TRIPS: (topics.trips, ProtoCodec(trip_pb2.Trip)),
            Input.SCORES: (topics.scores, ProtoCodec(trip_pb2.DriverScore)),
            Input.DEADLETTER: (settings.topics.deadletter, ProtoCodec(deadletter_pb2.DeadLetter)),
            Input.KPIS: (settings.topics.kpis, ProtoCodec(kpi_pb2.FleetKpi)),
        }
        inputs = dict(codecs[i] for i in settings.inputs)
        # The KPI records are the analytics handler's: the hot store sees the rest.
        stored = [topic for topic in inputs if topic != settings.topics.kpis]
        handler = StorageHandler(
            topics=topics,
            single_input=stored[0] if len(stored) == 1 else None,
            store=store,
            lake=lake,
            metrics=StorageMetrics(metrics.registry),
            shared=metrics,
            policy=StoragePolicy(
                hot_retention_days=settings.hot_retention_days,
                partitions_ahead_days=settings.partitions_ahead_days,
                events_retention_days=settings.events_retention_days,
                rows=RowRetention(
                    latest_days=settings.latest_retention_days,
                    dead_letters_days=settings.dead_letters_retention_days,
                    ledger_days=settings.ledger_retention_days,
                ),
                maintenance_interval_s=settings.maintenance_interval_s,
                latest_interval_s=settings.latest_interval_s,
                hold_s=settings.hold_ms / 1000,
            ),
        )
        analytics = AnalyticsHandler(
            handler,
            store=AnalyticsStore(
                settings.postgres, application_name=f"storage-writer-{settings.instance_id}"
            ),
            kpis_topic=settings.topics.kpis,
            registry=(
                RegistryWatcher(
                    settings.registry_path, check_interval_s=settings.registry_check_interval_s
                )
                if settings.registry_path
                else None
            ),
            metrics=AnalyticsMetrics(metrics.registry),
            retention_days=settings.events_retention_days,
            expire_interval_s=settings.maintenance_interval_s,
        )
        config = loop_config(
            "storage-writer",
            settings,
            group_id=settings.group_id,
            inputs=inputs,
            mode=DeliveryMode.AT_LEAST_ONCE,
            max_batch=settings.max_batch,
            poll_timeout_s=settings.batch_wait_s,
        )
        return config, analytics

    try:
        run_loop_service("storage-writer", settings, build)
    finally:
        # A graceful stop leaves no spool behind: everything consumed is in Parquet.
        for lake in lakes:
            started = time.monotonic()
            rolled = lake.close()
            log.info("rolled %d Parquet file(s) in %.2fs", len(rolled), time.monotonic() - started)


if __name__ == "__main__":
    main()
