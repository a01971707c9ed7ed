"""Who runs an operator's command (an erasure, a replay), for the records that say so.

In a pod the process's user often has no entry in the system's user database, and
``getpass.getuser()`` fails there. So the name comes from the command's ``--by`` option or
``FLEET_OPERATOR_NAME`` first, and from the system only when it knows the user.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable

from fleetpipe.core.errors import ConfigError

OPERATOR_ENV = "FLEET_OPERATOR_NAME"


def operator_name(given: str, *, lookup: Callable[[], str] = getpass.getuser) -> str:
    """``given`` (the option or the variable), else the system's name for the user; a clear
    error when neither names anyone."""
    if given.strip():
        return given.strip()
    try:
        found = lookup().strip()
    except (KeyError, OSError, ImportError) as exc:
        # KeyError (OSError from Python 3.13): a user id with no passwd entry, as in a pod.
        raise ConfigError(
            f"who runs this is not known (the system has no name for this user: {exc}):"
            f" give --by NAME or set {OPERATOR_ENV}"
        ) from exc
    if not found:
        raise ConfigError(f"who runs this is not known: give --by NAME or set {OPERATOR_ENV}")
    return found
