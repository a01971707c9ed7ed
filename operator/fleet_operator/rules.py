"""``spec.rules`` and ``spec.zones`` checked with the models the services parse, before anything
is rendered, and turned into the files they read.

The CRD's schemas (generated from the same models) already refuse a misspelt key or a wrong
type at the API server; what a schema cannot say — a polygon that crosses itself, two fences or
zones of one name, a speed tier without a bound — is caught here, so a bad file never reaches a
ConfigMap: the pipeline keeps its last good rules and zones and says why in its status.

The zones reach two services: their geofences join ``spec.rules``' own in detection's rules file
(``geofence.fences``), their speed limits make enrichment's speed-limit table (``areas``).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from fleet_operator.spec import FleetPipelineSpec, SpecError
from fleetpipe.core.errors import ConfigError
from fleetpipe.core.zones import Zone, fences, parse_zones, speed_areas
from fleetpipe.detection.config import Rules


class InvalidRules(SpecError):
    """``spec.rules`` or ``spec.zones`` a service would refuse; the message names the field."""


def checked_zones(spec: FleetPipelineSpec) -> list[Zone]:
    try:
        return parse_zones(spec.zones)
    except ValidationError as exc:
        problems = "; ".join(
            f"spec.zones.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
            for err in exc.errors()
        )
        raise InvalidRules(problems) from exc
    except ValueError as exc:
        raise InvalidRules(f"spec.zones: {exc}") from exc


def rules_document(spec: FleetPipelineSpec) -> dict[str, Any]:
    """Detection's rules file: ``spec.rules`` with the zones' geofences added to its fences."""
    zone_fences = fences(checked_zones(spec))
    if not zone_fences:
        return dict(spec.rules)
    geofence = dict(spec.rules.get("geofence") or {})
    geofence["fences"] = [*(geofence.get("fences") or []), *zone_fences]
    return {**spec.rules, "geofence": geofence}


def limits_document(spec: FleetPipelineSpec) -> dict[str, Any]:
    """Enrichment's speed-limit table: the zones with a speed limit."""
    areas = speed_areas(checked_zones(spec))
    return {"areas": areas} if areas else {}


def checked_rules(spec: FleetPipelineSpec) -> Rules:
    source = "spec.rules" if not spec.zones else "spec.rules (with spec.zones' geofences)"
    try:
        return Rules.parse(rules_document(spec), source=source)
    except ConfigError as exc:
        raise InvalidRules(str(exc)) from exc
