"""Console tokens: from the Secret's JSON to a fleet scope; unknown or missing is refused."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from fleetpipe.console.auth import Tokens, Unauthorized, bearer
from fleetpipe.console.settings import ConsoleSettings
from fleetpipe.query.scope import Scope

pytestmark = pytest.mark.unit


def _settings(tokens: str) -> ConsoleSettings:
    return ConsoleSettings(console_tokens=SecretStr(tokens))


def test_tokens_map_to_fleets_and_a_star_to_every_fleet() -> None:
    found = _settings('{"a": ["fleet-a", "fleet-c"], "ops": ["*"]}').token_fleets()
    assert found == {"a": frozenset({"fleet-a", "fleet-c"}), "ops": None}
    tokens = Tokens(found)
    assert tokens.scope("a") == Scope(frozenset({"fleet-a", "fleet-c"}))
    assert tokens.scope("ops").unrestricted


@pytest.mark.parametrize("token", [None, "", "A", "a "], ids=["none", "empty", "case", "space"])
def test_unknown_tokens_are_refused(token: str | None) -> None:
    with pytest.raises(Unauthorized):
        Tokens({"a": frozenset({"fleet-a"})}).scope(token)


@pytest.mark.parametrize("raw", ['["a"]', '{"a": []}', '{"": ["x"]}'])
def test_malformed_token_settings_are_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="token"):
        _settings(raw).token_fleets()


def test_the_bearer_header_wins_over_the_query_token() -> None:
    assert bearer("Bearer  abc ", "q") == "abc"
    assert bearer("Basic abc", "q") == "q"
    assert bearer(None, None) is None
