"""``python -m fleetpipe.enrichment``: configured by FLEET_* variables (see settings.py)."""

from __future__ import annotations

from fleetpipe.core.codecs import ProtoCodec
from fleetpipe.core.loop import Handler, LoopConfig
from fleetpipe.core.metrics import Metrics
from fleetpipe.core.packs import PackCodec, PackLimits
from fleetpipe.core.service import loop_config, run_loop_service
from fleetpipe.core.watch import WatchedFile
from fleetpipe.enrichment.enrich import Enricher, SpeedLimits
from fleetpipe.enrichment.handler import EnrichmentHandler, EnrichmentMetrics
from fleetpipe.enrichment.settings import EnrichmentSettings
from fleetpipe.pb.v1 import telemetry_pb2
from fleetpipe.registry import RegistryWatcher, VehicleRegistry


def main() -> None:
    settings = EnrichmentSettings()

    def build(metrics: Metrics) -> tuple[LoopConfig, Handler]:
        limits_file = (
            WatchedFile(
                settings.speed_limits_path,
                SpeedLimits.load,
                what="speed limits",
                check_interval_s=settings.registry_check_interval_s,
            )
            if settings.speed_limits_path
            else None
        )
        limits = limits_file.current if limits_file else SpeedLimits()
        watcher = (
            RegistryWatcher(
                settings.registry_path, check_interval_s=settings.registry_check_interval_s
            )
            if settings.registry_path
            else None
        )
        registry = watcher.current if watcher else VehicleRegistry([], source="(none)")
        config = loop_config(
            "enrichment",
            settings,
            group_id=settings.group_id,
            # Packs and single records alike: one record per event for the handler.
            inputs={settings.topics.raw: PackCodec(ProtoCodec(telemetry_pb2.Telemetry))},
            mode=settings.mode,
        )
        handler = EnrichmentHandler(
            Enricher(registry, limits),
            output_topic=settings.topics.enriched,
            metrics=EnrichmentMetrics(metrics.registry),
            watcher=watcher,
            limits=limits_file,
            shared=metrics,
            packing=PackLimits.from_settings(settings.kafka),
        )
        return config, handler

    run_loop_service("enrichment", settings, build)


if __name__ == "__main__":
    main()
