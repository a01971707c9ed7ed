"""Bearer tokens bound to fleets.

Tokens are kept only as SHA-256 digests, so a process dump or a log line never holds one, and a
lookup compares digests. The token file is re-read when it changes (Kubernetes swaps a mounted
Secret's symlink), at most every ``reload_interval_s``; a broken new version is logged and the
previous tokens kept.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Iterable, Mapping

import yaml

from fleetpipe.core.errors import ConfigError
from fleetpipe.ingest.settings import AuthSettings

log = logging.getLogger(__name__)


class TokenError(ConfigError):
    """A token source that cannot be used; the message names it (never a token)."""


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _parse(doc: object, source: str) -> dict[bytes, str]:
    if isinstance(doc, dict) and isinstance(doc.get("tokens"), dict):
        doc = doc["tokens"]
    if not isinstance(doc, dict):
        raise TokenError(f"{source}: expected a map of token to fleet id")
    out: dict[bytes, str] = {}
    for n, (token, fleet) in enumerate(doc.items(), start=1):
        if not isinstance(token, str) or len(token) < 16:
            raise TokenError(f"{source}: token #{n} must be a string of at least 16 characters")
        if not isinstance(fleet, str) or not fleet:
            raise TokenError(f"{source}: token #{n} has no fleet id")
        out[_digest(token)] = fleet
    return out


def bearer_token(metadata: Iterable[tuple[str, str | bytes]] | None) -> str | None:
    """The token of an ``authorization: Bearer <token>`` header, or None."""
    for key, value in metadata or ():
        if key.lower() == "authorization":
            text = value.decode() if isinstance(value, bytes) else value
            scheme, _, token = text.strip().partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


class TokenStore:
    """Maps a presented token to its fleet."""

    def __init__(self, settings: AuthSettings) -> None:
        self._file = settings.tokens_file
        self._interval = settings.reload_interval_s
        self._static: dict[bytes, str] = {}
        if settings.tokens is not None:
            try:
                doc = json.loads(settings.tokens.get_secret_value())
            except json.JSONDecodeError as exc:
                raise TokenError(
                    f"auth.tokens (FLEET_AUTH__TOKENS) is not valid JSON (at {exc.pos})"
                ) from None
            self._static = _parse(doc, "auth.tokens (FLEET_AUTH__TOKENS)")
        self._from_file: dict[bytes, str] = {}
        self._stamp: tuple[int, int, int] | None = None
        self._next_check = 0.0
        if self._file is not None:
            self._stamp = self._file_stamp()
            self._from_file = self._load_file()
        if not self._static and not self._from_file:
            raise TokenError("no tokens configured: set auth.tokens_file or auth.tokens")

    def __len__(self) -> int:
        return len(self._static) + len(self._from_file)

    def fleets(self) -> set[str]:
        return set(self._static.values()) | set(self._from_file.values())

    def fleet_for(self, token: str | None) -> str | None:
        if not token:
            return None
        self.maybe_reload()
        d = _digest(token)
        return self._from_file.get(d) or self._static.get(d)

    def maybe_reload(self, now: float | None = None) -> bool:
        if self._file is None:
            return False
        now = time.monotonic() if now is None else now
        if now < self._next_check:
            return False
        self._next_check = now + self._interval
        try:
            stamp = self._file_stamp()
        except TokenError as exc:
            log.error("%s; keeping %d tokens", exc, len(self._from_file))
            return False
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            tokens = self._load_file()
        except TokenError as exc:
            log.error("token file reload failed, keeping %d tokens: %s", len(self._from_file), exc)
            return False
        self._from_file = tokens
        log.info("token file reloaded: %d tokens for %d fleets", len(tokens), len(self.fleets()))
        return True

    def _file_stamp(self) -> tuple[int, int, int]:
        assert self._file is not None
        try:
            st = os.stat(self._file)
        except OSError as exc:
            raise TokenError(f"cannot read token file {self._file}: {exc.strerror}") from None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def _load_file(self) -> dict[bytes, str]:
        assert self._file is not None
        try:
            text = self._file.read_text()
        except OSError as exc:
            raise TokenError(f"cannot read token file {self._file}: {exc.strerror}") from None
        try:
            doc = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506
        except yaml.YAMLError:
            # Not quoted back: the parser's message could echo a token.
            raise TokenError(f"token file {self._file} is not valid YAML or JSON") from None
        return _parse(doc, f"auth.tokens_file {self._file}")


def tokens_from_mapping(tokens: Mapping[str, str]) -> str:
    """The JSON for ``auth.tokens`` (FLEET_AUTH__TOKENS) from a token → fleet map."""
    return json.dumps(dict(tokens))
