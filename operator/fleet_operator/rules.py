"""``spec.rules`` checked with the model detection parses, before anything is rendered.

The CRD's schema (generated from the same model) already refuses a misspelt key or a wrong type
at the API server; what a schema cannot say — a geofence polygon that crosses itself, two fences
of one name, a speed tier without a bound — is caught here, so a bad rules file never reaches
detection's ConfigMap: the pipeline keeps its last good rules and says why in its status.
"""

from __future__ import annotations

from fleet_operator.spec import FleetPipelineSpec, SpecError
from fleetpipe.core.errors import ConfigError
from fleetpipe.detection.config import Rules


class InvalidRules(SpecError):
    """``spec.rules`` that detection would refuse; the message names the field."""


def checked_rules(spec: FleetPipelineSpec) -> Rules:
    try:
        return Rules.parse(spec.rules, source="spec.rules")
    except ConfigError as exc:
        raise InvalidRules(str(exc)) from exc
