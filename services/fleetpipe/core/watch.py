"""A configuration file a running service follows: reloaded when it changes, kept when broken.

Kubernetes updates a mounted ConfigMap by swapping a symlink, so the check follows links and
compares (inode, size, mtime). A new version that does not load is logged and the last good one
kept: a bad edit must not take the pipeline down, and it is not retried until the file changes
again.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

from fleetpipe.core.errors import ConfigError

log = logging.getLogger(__name__)

T = TypeVar("T")


class WatchedFile(Generic[T]):
    """What ``load(path)`` made of the file, reloaded at most every ``check_interval_s``."""

    def __init__(
        self,
        path: Path,
        load: Callable[[Path], T],
        *,
        what: str,
        check_interval_s: float = 5.0,
    ) -> None:
        self.path = path
        self.what = what
        self.check_interval_s = check_interval_s
        self._load = load
        self._stamp = self._file_stamp()
        # The first load is not guarded: a service must not start on a file it cannot use.
        self.current = load(path)
        self._next_check = time.monotonic() + check_interval_s
        self.reloads = 0
        self.failed_reloads = 0
        self.last_error = ""

    def _file_stamp(self) -> tuple[int, int, int]:
        st = os.stat(self.path)
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def maybe_reload(self, now: float | None = None) -> bool:
        """Reload when due and changed; True when a new version is now current."""
        now = time.monotonic() if now is None else now
        if now < self._next_check:
            return False
        self._next_check = now + self.check_interval_s
        try:
            stamp = self._file_stamp()
        except OSError as exc:
            log.warning("%s %s unreadable, keeping the current one: %s", self.what, self.path, exc)
            return False
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            loaded = self._load(self.path)
        except ConfigError as exc:
            self.failed_reloads += 1
            self.last_error = str(exc)
            log.error("%s reload failed, keeping the last good one: %s", self.what, exc)
            return False
        self.current = loaded
        self.reloads += 1
        self.last_error = ""
        log.info("%s reloaded from %s", self.what, self.path)
        return True
