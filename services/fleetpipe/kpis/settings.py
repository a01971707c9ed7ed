"""KPI stage settings: ``FLEET_*`` variables, nested with ``__``."""

from __future__ import annotations

from pydantic import Field, model_validator

from fleetpipe.core.settings import ServiceSettings
from fleetpipe.kpis.windows import WindowSpec


class KpiSettings(ServiceSettings):
    """``FLEET_*`` variables of the KPI stage; topics come from ``FLEET_TOPICS__*``."""

    group_id: str = "fleetpipe-kpis"
    # Sliding windows of event time: window_s long, a new one every hop_s (a divisor of it).
    window_s: int = Field(default=900, ge=1, le=86_400)
    hop_s: int = Field(default=60, ge=1, le=86_400)
    # A window is emitted once the watermark (the newest event time seen on its partition) is
    # this far past its end; events arriving later than that are dropped and dead-lettered.
    # It must cover ingest's late events one wants counted and detection's delay for alerts.
    allowed_lateness_s: int = Field(default=120, ge=0, le=86_400)
    # A partition whose telemetry is quiet this long (processing time) lets its event time
    # go on with the clock, so a fleet that stops reporting still gets its last windows.
    idle_s: float = Field(default=30.0, gt=0, le=86_400)
    # Reading the whole state changelog on assignment may wait for another replica's open
    # transaction to finish; past this the assignment fails loudly.
    restore_timeout_s: float = Field(default=300.0, gt=0)
    # Fault injection for crash drills: hold each commit this long after producing its state,
    # before the transaction commits, so a kill can land inside one.
    hold_ms: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _whole_hops(self) -> KpiSettings:
        if self.window_s % self.hop_s:
            raise ValueError(
                f"window_s ({self.window_s}) must be a whole number of hop_s ({self.hop_s})"
            )
        return self

    def window_spec(self) -> WindowSpec:
        return WindowSpec(
            size_us=self.window_s * 1_000_000,
            hop_us=self.hop_s * 1_000_000,
            lateness_us=self.allowed_lateness_s * 1_000_000,
            idle_us=int(self.idle_s * 1_000_000),
        )
