"""Erasing a vehicle's or a driver's data from the console: ``POST /api/v1/vehicles/{id}/erasure``
and ``POST /api/v1/drivers/{id}/erasure`` with a reason, answered with the audit record.

Off unless ``FLEET_ERASURE__ENABLED``: the console's own sessions are read-only, and an erasure
needs a role that may delete (``FLEET_ERASURE__POSTGRES__DSN``, by default the console's DSN
without the read-only sessions) and the lake's location. A token erases only subjects whose
rows all lie in its fleets: one of another fleet is answered 404 (as if unknown: a token learns
nothing of other fleets), one with rows in its fleets and others' is 403.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from fleetpipe.console.api import Caller, _deps
from fleetpipe.console.settings import ErasureSettings
from fleetpipe.core.db import PostgresSettings
from fleetpipe.erasure.run import erase, migrate
from fleetpipe.erasure.subject import Subject, SubjectKind
from fleetpipe.lake.store import LakeStore
from fleetpipe.query.errors import Forbidden, NotFound
from fleetpipe.query.scope import Scope

log = logging.getLogger(__name__)


class ErasureRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)] = Field(
        description="Why (a request's reference); kept in the audit log."
    )
    requested_by: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] = ""


# Where a subject's fleets are found: the tables that name both (telemetry by its primary key).
_FLEETS = {
    SubjectKind.VEHICLE: """
        SELECT fleet_id FROM vehicle_latest WHERE vehicle_id = %(id)s
        UNION SELECT fleet_id FROM telemetry WHERE vehicle_id = %(id)s
        UNION SELECT fleet_id FROM alerts WHERE vehicle_id = %(id)s
        UNION SELECT fleet_id FROM trips WHERE vehicle_id = %(id)s
    """,
    SubjectKind.DRIVER: """
        SELECT fleet_id FROM vehicle_latest WHERE driver_id = %(id)s
        UNION SELECT fleet_id FROM driver_scores WHERE driver_id = %(id)s
        UNION SELECT fleet_id FROM alerts WHERE driver_id = %(id)s
        UNION SELECT fleet_id FROM trips WHERE driver_id = %(id)s
    """,
}


class Eraser:
    """The erasures one console runs, one at a time (each rewrites lake files)."""

    def __init__(self, settings: ErasureSettings, postgres: PostgresSettings) -> None:
        self.settings = settings
        self.postgres = settings.postgres or postgres
        self.lock = asyncio.Lock()
        self._migrated = False

    def store(self) -> LakeStore | None:
        if self.settings.lake_url or self.settings.lake_path is not None:
            return LakeStore.from_url(self.settings.lake_url or str(self.settings.lake_path))
        return None

    def run(self, subject: Subject, *, reason: str, requested_by: str) -> dict[str, Any]:
        if not self._migrated:
            migrate(self.postgres, application_name="fleetpipe-console-erasure", timeout_s=30)
            self._migrated = True
        return erase(
            self.postgres,
            subject,
            reason=reason,
            requested_by=requested_by,
            store=self.store(),
            application_name="fleetpipe-console-erasure",
        )


def _eraser(request: Request) -> Eraser:
    eraser: Eraser | None = request.app.state.eraser
    if eraser is None:
        raise NotFound("erasure is not enabled on this console")
    return eraser


async def _fleets_of(request: Request, subject: Subject) -> set[str]:
    async with _deps(request).pool.connection() as conn:
        cur = await conn.execute(_FLEETS[subject.kind], {"id": subject.id})
        return {str(fleet) for (fleet,) in await cur.fetchall() if fleet is not None}


def check_scope(scope: Scope, subject: Subject, fleets: set[str]) -> None:
    inside = fleets if scope.fleets is None else fleets & scope.fleets
    if not inside:
        raise NotFound(f"no {subject} in this token's fleets")
    if inside != fleets:
        raise Forbidden(f"{subject} has data of fleets outside this token's fleets")


async def _erase(
    request: Request, scope: Scope, subject: Subject, body: ErasureRequest
) -> dict[str, Any]:
    eraser = _eraser(request)
    check_scope(scope, subject, await _fleets_of(request, subject))
    fleets = "all fleets" if scope.fleets is None else ", ".join(sorted(scope.fleets))
    requested_by = f"console ({fleets})" + (f": {body.requested_by}" if body.requested_by else "")
    async with eraser.lock:
        record = await asyncio.to_thread(
            eraser.run, subject, reason=body.reason, requested_by=requested_by
        )
    log.info("erased %s (erasure %s)", subject, record["erasure_id"])
    return record


router = APIRouter(prefix="/api/v1")

SubjectId = Annotated[str, PathParam(min_length=1, max_length=200)]


@router.post("/vehicles/{vehicle_id}/erasure", summary="Erase a vehicle's data, with a reason")
async def erase_vehicle(
    request: Request, scope: Caller, vehicle_id: SubjectId, body: ErasureRequest
) -> dict[str, Any]:
    return await _erase(request, scope, Subject(SubjectKind.VEHICLE, vehicle_id), body)


@router.post("/drivers/{driver_id}/erasure", summary="Erase a driver's data, with a reason")
async def erase_driver(
    request: Request, scope: Caller, driver_id: SubjectId, body: ErasureRequest
) -> dict[str, Any]:
    return await _erase(request, scope, Subject(SubjectKind.DRIVER, driver_id), body)
