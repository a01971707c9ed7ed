from __future__ import annotations

from typing import Literal

from pydantic import Field

from fleetpipe.core.settings import DeliveryMode, ServiceSettings


class PassthroughSettings(ServiceSettings):
    input_topic: str = "fleet.telemetry.raw.v1"
    output_topic: str = "fleet.passthrough.v1"
    group_id: str = "fleetpipe-passthrough"
    mode: DeliveryMode = DeliveryMode.AT_LEAST_ONCE
    hold_ms: int = Field(default=0, ge=0, description="hold each batch open before committing")
    # What the input records are, so that B can be measured on any stage's input.
    input_type: Literal["telemetry", "enriched"] = "telemetry"
