from __future__ import annotations

from pathlib import Path

from pydantic import Field

from fleetpipe.core.settings import DeliveryMode, ServiceSettings


class DetectionSettings(ServiceSettings):
    """``FLEET_*`` variables of the detection service; topics come from ``FLEET_TOPICS__*``."""

    group_id: str = "fleetpipe-detection"
    mode: DeliveryMode = DeliveryMode.EXACTLY_ONCE
    # The rules file (YAML, see fleetpipe.detection.config); the seeds' defaults without it.
    rules_path: Path | None = None
    # How often the rules file is checked for a change (a ConfigMap edit applies without a
    # restart; a broken version is refused and the last good rules kept).
    rules_check_interval_s: float = Field(default=5.0, gt=0)
    # Reading the whole state changelog on assignment may wait for another replica's open
    # transaction to finish; past this the assignment fails loudly.
    restore_timeout_s: float = Field(default=300.0, gt=0)
    # Fault injection for crash drills: hold each commit this long after producing its alerts
    # and state, before the transaction commits, so a kill can land inside one.
    hold_ms: int = Field(default=0, ge=0)
