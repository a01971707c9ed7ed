"""Bearer tokens scoped to fleets: a token of fleet A reads nothing of fleet B."""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from fleetpipe.query.scope import Scope


class Unauthorized(Exception):
    """No token, or one the console does not know."""


class Tokens:
    def __init__(self, tokens: Mapping[str, frozenset[str] | None]) -> None:
        self._tokens = dict(tokens)

    def scope(self, token: str | None) -> Scope:
        """The scope of ``token``; compared in constant time so a guess learns nothing."""
        if token:
            for known, fleets in self._tokens.items():
                if hmac.compare_digest(known.encode(), token.encode()):
                    return Scope(fleets)
        raise Unauthorized("a valid bearer token is needed")


def bearer(header: str | None, query_token: str | None) -> str | None:
    """The token of ``Authorization: Bearer …``, else of ``?access_token=`` (which the
    browser's EventSource needs: it cannot set headers)."""
    if header:
        kind, _, value = header.partition(" ")
        if kind.lower() == "bearer" and value.strip():
            return value.strip()
    return query_token or None
