"""Who runs an operator's command: the option or variable first, then the system's name for the
user, and a clear error when the user has none (a pod's user id without a passwd entry)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from fleetpipe.core.errors import ConfigError
from fleetpipe.core.operators import OPERATOR_ENV, operator_name

pytestmark = pytest.mark.unit


def _no_passwd_entry() -> str:
    # What getpass.getuser() raises for a user id the passwd file does not list.
    raise KeyError("getpwuid(): uid not found: 10001")


def test_the_given_name_wins_without_asking_the_system() -> None:
    assert operator_name("  alice  ", lookup=_no_passwd_entry) == "alice"


def test_the_systems_name_is_used_when_none_is_given() -> None:
    assert operator_name("", lookup=lambda: "ops") == "ops"


@pytest.mark.parametrize(
    "lookup",
    [
        pytest.param(_no_passwd_entry, id="no-passwd-entry"),
        pytest.param(lambda: "  ", id="empty-name"),
    ],
)
def test_no_name_anywhere_is_a_clear_error_naming_the_option_and_variable(
    lookup: Callable[[], str],
) -> None:
    with pytest.raises(ConfigError, match=f"give --by NAME or set {OPERATOR_ENV}"):
        operator_name(" ", lookup=lookup)
