from __future__ import annotations

from pathlib import Path

from pydantic import Field

from fleetpipe.core.settings import DeliveryMode, ServiceSettings


class EnrichmentSettings(ServiceSettings):
    """``FLEET_*`` variables of the enrichment service; topics come from ``FLEET_TOPICS__*``."""

    group_id: str = "fleetpipe-enrichment"
    mode: DeliveryMode = DeliveryMode.EXACTLY_ONCE
    # The vehicle registry (CSV or YAML, see fleetpipe.registry); without it every vehicle is
    # unknown.
    registry_path: Path | None = None
    registry_check_interval_s: float = Field(default=5.0, gt=0)
    # The speed-limit table (YAML, see fleetpipe.enrichment.enrich); built-in defaults without.
    # Followed like the registry (same check interval): a change applies without a restart.
    speed_limits_path: Path | None = None
