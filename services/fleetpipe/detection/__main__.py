"""``python -m fleetpipe.detection``: configured by FLEET_* variables (see settings.py)."""

from __future__ import annotations

from fleetpipe.core.codecs import RawCodec
from fleetpipe.core.keygroups import KeyGroups
from fleetpipe.core.loop import Handler, LoopConfig
from fleetpipe.core.metrics import Metrics
from fleetpipe.core.packs import PackCodec
from fleetpipe.core.service import loop_config, run_loop_service
from fleetpipe.core.watch import WatchedFile
from fleetpipe.detection.changelog import Changelog
from fleetpipe.detection.config import Rules
from fleetpipe.detection.engine import Detector
from fleetpipe.detection.handler import DetectionHandler, DetectionMetrics
from fleetpipe.detection.settings import DetectionSettings
from fleetpipe.pb.v1 import enriched_pb2


def main() -> None:
    settings = DetectionSettings()

    def build(metrics: Metrics) -> tuple[LoopConfig, Handler]:
        watcher = (
            WatchedFile(
                settings.rules_path,
                Rules.load,
                what="rules",
                check_interval_s=settings.rules_check_interval_s,
            )
            if settings.rules_path
            else None
        )
        rules = watcher.current if watcher else Rules()
        topics = settings.topics
        config = loop_config(
            "detection",
            settings,
            group_id=settings.group_id,
            # Decoded a batch at a time by the detector (ptars), not record by record.
            # Packs and single records alike: one record per event.
            inputs={topics.enriched: PackCodec(RawCodec(enriched_pb2.EnrichedTelemetry))},
            mode=settings.mode,
            seal_topics=(topics.detection_state,),  # restored from (fleetpipe.core.seal)
            # The restore on assignment asks for the input's partitions, then reads the
            # changelog, each within the restore's bound.
            assign_bound_s=2 * settings.restore_timeout_s,
        )
        store = Changelog(
            settings.kafka,
            topic=topics.detection_state,
            input_topic=topics.enriched,
            client_id=f"detection-{settings.instance_id}",
            timeout_s=settings.restore_timeout_s,
        )
        handler = DetectionHandler(
            Detector(rules, groups=KeyGroups(settings.kafka.key_groups)),
            store,
            input_topic=topics.enriched,
            topics=topics,
            metrics=DetectionMetrics(metrics.registry),
            max_batch=settings.kafka.max_batch,
            shared=metrics,
            hold_s=settings.hold_ms / 1000,
            rules=watcher,
        )
        return config, handler

    run_loop_service("detection", settings, build)


if __name__ == "__main__":
    main()
