"""Which fleet a vehicle belongs to: the registry's word, not the event's.

A token is bound to one fleet (``auth.py``) and an event's own ``fleet_id`` must match it, but
only the registry says whose a vehicle is. An event for a vehicle registered to another fleet is
refused per event (and dead-lettered), whatever fleet it claims; otherwise a token of fleet A
could raise fleet B's alerts and call fleet B's drivers. A vehicle the registry does not know
follows ``unknown_vehicles``: ``accept`` (the default: trackers are often sending before they are
registered, and enrichment marks them ``known=false``) or ``reject``. The rejection reads the
same for a foreign and an unknown vehicle and never names the other fleet.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path

from fleetpipe.core.errors import ConfigError
from fleetpipe.registry import RegistryWatcher, VehicleRegistry

log = logging.getLogger(__name__)


class UnknownVehicles(StrEnum):
    ACCEPT = "accept"
    REJECT = "reject"


class Tenancy:
    """The owner of every registered vehicle, kept current with the registry file."""

    def __init__(
        self,
        registry: VehicleRegistry | None,
        *,
        unknown: UnknownVehicles = UnknownVehicles.ACCEPT,
        watcher: RegistryWatcher | None = None,
    ) -> None:
        self.reject_unknown = unknown is UnknownVehicles.REJECT
        self._watcher = watcher
        self.owners: Mapping[str, str] | None = None
        if registry is not None:
            self._use(registry)

    @classmethod
    def from_file(
        cls, path: Path | None, *, unknown: UnknownVehicles, check_interval_s: float
    ) -> Tenancy:
        """From the registry file ingest shares with enrichment; with none, every vehicle is
        the caller's (the token still binds the fleet) unless unknown vehicles are refused."""
        if path is None:
            return cls(
                VehicleRegistry([]) if unknown is UnknownVehicles.REJECT else None, unknown=unknown
            )
        try:
            watcher = RegistryWatcher(path, check_interval_s=check_interval_s)
        except OSError as exc:
            raise ConfigError(
                f"registry_path (FLEET_REGISTRY_PATH) {path} cannot be read: {exc.strerror}"
            ) from None
        return cls(watcher.current, unknown=unknown, watcher=watcher)

    def _use(self, registry: VehicleRegistry) -> None:
        # One dict lookup per event on the hot path.
        self.owners = {v.vehicle_id: v.fleet_id for v in registry}

    def refresh(self, now: float | None = None) -> None:
        """Pick up a changed registry file (at most every check interval)."""
        if self._watcher is not None and self._watcher.maybe_reload(now):
            self._use(self._watcher.current)
            log.info("tenancy: %d registered vehicles", len(self._watcher.current))
