"""``python -m fleetpipe.passthrough``: configured by FLEET_* variables (see settings.py)."""

from __future__ import annotations

from typing import Any

from fleetpipe.core.codecs import ProtoCodec
from fleetpipe.core.loop import Handler, LoopConfig
from fleetpipe.core.metrics import Metrics
from fleetpipe.core.packs import PackCodec
from fleetpipe.core.service import loop_config, run_loop_service
from fleetpipe.passthrough.handler import PassthroughHandler
from fleetpipe.passthrough.settings import PassthroughSettings
from fleetpipe.pb.v1 import enriched_pb2, telemetry_pb2


def main() -> None:
    settings = PassthroughSettings()

    def build(_metrics: Metrics) -> tuple[LoopConfig, Handler]:
        codec: ProtoCodec[Any] = (
            ProtoCodec(enriched_pb2.EnrichedTelemetry)
            if settings.input_type == "enriched"
            else ProtoCodec(telemetry_pb2.Telemetry)
        )
        config = loop_config(
            "passthrough",
            settings,
            group_id=settings.group_id,
            inputs={settings.input_topic: PackCodec(codec)},
            mode=settings.mode,
        )
        return config, PassthroughHandler(settings.output_topic, hold_s=settings.hold_ms / 1000)

    run_loop_service("passthrough", settings, build)


if __name__ == "__main__":
    main()
