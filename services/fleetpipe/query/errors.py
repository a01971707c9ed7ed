"""What a query refuses, with the field a person (or a 422 answer) should point at."""

from __future__ import annotations

from fleetpipe.core.errors import FleetPipeError


class BadQuery(FleetPipeError):
    """A parameter the query cannot honour; ``field`` names it (``hours``, ``bbox``, ...)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message


class NotFound(FleetPipeError):
    """The thing asked for (an alert id) does not exist, or not in a fleet the caller may see."""


class Forbidden(FleetPipeError):
    """The caller may not see this (a fleet outside its scope, dead letters of every fleet)."""
