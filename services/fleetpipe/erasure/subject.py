"""Who is erased: a vehicle or a driver, and the reason that must come with it (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from fleetpipe.core.errors import FleetPipeError


class ErasureError(FleetPipeError):
    """An erasure cannot be done as asked (no reason, no subject, a store that fails)."""


class SubjectKind(StrEnum):
    VEHICLE = "vehicle"
    DRIVER = "driver"

    @property
    def column(self) -> str:
        return f"{self.value}_id"


@dataclass(frozen=True)
class Subject:
    kind: SubjectKind
    id: str

    def __str__(self) -> str:
        return f"{self.kind.value} {self.id}"


def subject_of(*, vehicle: str, driver: str, reason: str) -> Subject:
    """The one subject named; refuses none, both, or a missing reason."""
    if not reason.strip():
        raise ErasureError("an erasure needs a reason (--reason), recorded in the audit log")
    if bool(vehicle.strip()) == bool(driver.strip()):
        raise ErasureError("name exactly one subject: --vehicle or --driver")
    if vehicle.strip():
        return Subject(SubjectKind.VEHICLE, vehicle.strip())
    return Subject(SubjectKind.DRIVER, driver.strip())
