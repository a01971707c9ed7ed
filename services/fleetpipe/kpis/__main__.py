"""``python -m fleetpipe.kpis`` / ``fleetpipe-kpis``: configured by FLEET_* variables."""

from __future__ import annotations

from fleetpipe.core.codecs import ProtoCodec
from fleetpipe.core.loop import Handler, LoopConfig
from fleetpipe.core.metrics import Metrics
from fleetpipe.core.packs import PackCodec
from fleetpipe.core.service import loop_config, run_loop_service
from fleetpipe.core.settings import DeliveryMode
from fleetpipe.kpis.changelog import KpiChangelog
from fleetpipe.kpis.handler import KpiHandler, KpiMetrics
from fleetpipe.kpis.settings import KpiSettings
from fleetpipe.pb.v1 import alert_pb2, enriched_pb2


def main() -> None:
    settings = KpiSettings()

    def build(metrics: Metrics) -> tuple[LoopConfig, Handler]:
        topics = settings.topics
        config = loop_config(
            "kpis",
            settings,
            group_id=settings.group_id,
            inputs={
                # Packs and single records alike: one record per event.
                topics.enriched: PackCodec(ProtoCodec(enriched_pb2.EnrichedTelemetry)),
                topics.alerts: ProtoCodec(alert_pb2.Alert),
            },
            # The windows are emitted once: outputs, state and offsets in one transaction.
            mode=DeliveryMode.EXACTLY_ONCE,
            seal_topics=(topics.kpi_state,),  # restored from (fleetpipe.core.seal)
            # The restore on assignment reads the changelog within this bound.
            assign_bound_s=settings.restore_timeout_s,
        )
        handler = KpiHandler(
            settings.window_spec(),
            KpiChangelog(
                settings.kafka,
                topic=topics.kpi_state,
                client_id=f"kpis-{settings.instance_id}",
                timeout_s=settings.restore_timeout_s,
            ),
            telemetry_topic=topics.enriched,
            alerts_topic=topics.alerts,
            kpis_topic=topics.kpis,
            state_topic=topics.kpi_state,
            metrics=KpiMetrics(metrics.registry),
            max_batch=settings.kafka.max_batch,
            hold_s=settings.hold_ms / 1000,
        )
        return config, handler

    run_loop_service("kpis", settings, build)


if __name__ == "__main__":
    main()
