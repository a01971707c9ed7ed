"""Console settings: ``FLEET_*`` variables, nested with ``__``.

``FLEET_CONSOLE_TOKENS`` (from a Secret) maps each bearer token to the fleets it may see, as
JSON: ``{"<token>": ["fleet-a"], "<ops token>": ["*"]}``; ``*`` is every fleet.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from fleetpipe.core.db import PostgresSettings
from fleetpipe.core.settings import ServiceSettings

ALL_FLEETS = "*"


class MapSettings(BaseModel):
    """What the page draws under the vehicles: a raster tile URL (``{z}/{x}/{y}``) or, when
    empty, a plain background (no tile server needed, nothing fetched from outside)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tile_url: str = ""
    tile_attribution: str = ""
    center_lat: float = Field(default=52.37, ge=-90, le=90)
    center_lon: float = Field(default=4.89, ge=-180, le=180)
    zoom: int = Field(default=11, ge=0, le=20)


class TracesSettings(BaseModel):
    """Where the console reads traces: Jaeger's query API (``/api/traces``), and Jaeger's own UI
    to link to when there is one (clusters running Jaeger's image have it; the Jaeger built from
    its Go module has none)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    query_url: str = ""  # e.g. http://jaeger-query:16686; empty: traces are not shown
    ui_url: str = ""
    # The service name detection's spans carry (OTEL_SERVICE_NAME, as the operator sets it).
    detection_service: str = "fleetpipe-detection"
    max_traces: int = Field(default=20, ge=1, le=200)
    timeout_s: float = Field(default=5.0, gt=0, le=60)


class HealthSettings(BaseModel):
    """Where the console reads the pipeline's health: each service's ``/metrics`` (``targets``:
    service name -> base URL of its health port) or a Prometheus HTTP API (``prometheus_url``,
    which wins when both are set; ``service_label`` names the service of each series)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    targets: dict[str, str] = Field(default_factory=dict)
    prometheus_url: str = ""
    service_label: str = "job"
    # The services read from Prometheus (the values of service_label); other jobs are not ours.
    services: tuple[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")], ...] = (
        "ingest",
        "enrichment",
        "detection",
        "notification",
        "storage-writer",
    )
    interval_s: float = Field(default=2.0, gt=0, le=300)
    # Rates and average times are taken over this window, as Prometheus' rate() does.
    window_s: float = Field(default=30.0, gt=0, le=3600)
    history: int = Field(default=300, ge=2, le=10_000)  # samples kept for the charts
    timeout_s: float = Field(default=2.0, gt=0, le=60)

    @property
    def configured(self) -> bool:
        return bool(self.targets or self.prometheus_url)


class ErasureSettings(BaseModel):
    """Erasure from the console (``fleetpipe.console.erasure``), off unless enabled."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = False
    # A role that may delete; None: the console's own DSN and schema (the console's API
    # sessions stay read-only either way).
    postgres: PostgresSettings | None = None
    # The lake, as the storage writer's FLEET_LAKE__URL / FLEET_LAKE__PATH; neither: the hot
    # store only (the audit record then lists no lake file).
    lake_url: str = ""
    lake_path: Path | None = None


class ConsoleSettings(ServiceSettings):
    postgres: PostgresSettings = PostgresSettings()
    console_tokens: SecretStr = SecretStr("{}")
    listen_host: str = "0.0.0.0"  # noqa: S104 - the Service reaches the pod from outside
    listen_port: int = Field(default=8000, ge=0, le=65535)
    pool_min: int = Field(default=1, ge=1, le=100)
    pool_max: int = Field(default=8, ge=1, le=100)
    # The live stream: alerts always; positions coalesced to one batch per vehicle a period.
    stream_positions: bool = True
    positions_period_s: float = Field(default=1.0, gt=0, le=60)
    map: MapSettings = MapSettings()
    traces: TracesSettings = TracesSettings()
    health: HealthSettings = HealthSettings()
    erasure: ErasureSettings = ErasureSettings()

    def token_fleets(self) -> dict[str, frozenset[str] | None]:
        """Token → the fleets it may see (``None``: every fleet)."""
        raw = json.loads(self.console_tokens.get_secret_value() or "{}")
        if not isinstance(raw, dict):
            raise ValueError("FLEET_CONSOLE_TOKENS must be a JSON object of token -> fleets")
        found: dict[str, frozenset[str] | None] = {}
        for token, fleets in raw.items():
            names = frozenset(str(f) for f in fleets)
            if not token or not names:
                raise ValueError("every console token needs a value and at least one fleet")
            found[str(token)] = None if ALL_FLEETS in names else names
        return found
