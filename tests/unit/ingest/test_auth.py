"""Bearer tokens bound to fleets, from a mounted Secret file or the environment."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from fleetpipe.ingest.auth import TokenError, TokenStore, bearer_token
from fleetpipe.ingest.settings import AuthSettings, IngestSettings, TlsSettings

Metadata = Sequence[tuple[str, str | bytes]]

pytestmark = pytest.mark.unit

TOKEN_A = "token-for-fleet-a-0123456789"
TOKEN_B = "token-for-fleet-b-0123456789"


@pytest.mark.parametrize(
    ("metadata", "token"),
    [
        pytest.param([("authorization", f"Bearer {TOKEN_A}")], TOKEN_A, id="bearer"),
        pytest.param([("Authorization", f"bearer  {TOKEN_A} ")], TOKEN_A, id="case-and-space"),
        pytest.param([("authorization", f"Bearer {TOKEN_A}".encode())], TOKEN_A, id="bytes"),
        pytest.param([("x-other", "1")], None, id="absent"),
        pytest.param([("authorization", f"Basic {TOKEN_A}")], None, id="other-scheme"),
        pytest.param([("authorization", "Bearer ")], None, id="empty"),
        pytest.param(None, None, id="no-metadata"),
    ],
)
def test_bearer_token_is_read_from_the_authorization_header(
    metadata: Metadata | None, token: str | None
) -> None:
    assert bearer_token(metadata) == token


def test_tokens_from_the_environment_map_to_fleets() -> None:
    store = TokenStore(AuthSettings(tokens=SecretStr(json.dumps({TOKEN_A: "fleet-a"}))))
    assert store.fleet_for(TOKEN_A) == "fleet-a"
    assert store.fleet_for(TOKEN_B) is None
    assert store.fleet_for(None) is None
    assert store.fleets() == {"fleet-a"}


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(f"tokens:\n  {TOKEN_A}: fleet-a\n  {TOKEN_B}: fleet-b\n", id="yaml-nested"),
        pytest.param(json.dumps({TOKEN_A: "fleet-a", TOKEN_B: "fleet-b"}), id="json-flat"),
    ],
)
def test_tokens_from_a_mounted_file(tmp_path: Path, text: str) -> None:
    path = tmp_path / "tokens.yaml"
    path.write_text(text)
    store = TokenStore(AuthSettings(tokens_file=path))
    assert (store.fleet_for(TOKEN_A), store.fleet_for(TOKEN_B)) == ("fleet-a", "fleet-b")


def test_a_changed_token_file_is_reloaded_and_a_broken_one_ignored(tmp_path: Path) -> None:
    path = tmp_path / "tokens.yaml"
    path.write_text(f"{TOKEN_A}: fleet-a\n")
    store = TokenStore(AuthSettings(tokens_file=path, reload_interval_s=1))
    assert store.fleet_for(TOKEN_B) is None
    path.write_text(f"{TOKEN_B}: fleet-b\n")
    os.utime(path, ns=(1, 1))
    assert store.maybe_reload(now=10**9)
    assert store.fleet_for(TOKEN_B) == "fleet-b"
    assert store.fleet_for(TOKEN_A) is None  # rotated out
    path.write_text("{not yaml: [")
    os.utime(path, ns=(2, 2))
    assert not store.maybe_reload(now=2 * 10**9)
    assert store.fleet_for(TOKEN_B) == "fleet-b"  # the last good tokens stay


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        pytest.param(AuthSettings(), "no tokens configured", id="none"),
        pytest.param(AuthSettings(tokens=SecretStr("{oops")), "not valid JSON", id="bad-json"),
        pytest.param(AuthSettings(tokens=SecretStr('["x"]')), "map of token", id="not-a-map"),
        pytest.param(
            AuthSettings(tokens=SecretStr('{"short": "fleet-a"}')), "16 characters", id="short"
        ),
        pytest.param(
            AuthSettings(tokens=SecretStr(json.dumps({TOKEN_A: ""}))), "no fleet", id="no-fleet"
        ),
        pytest.param(
            AuthSettings(tokens_file=Path("/nonexistent/tokens.yaml")), "cannot read", id="file"
        ),
    ],
)
def test_bad_token_sources_are_refused_without_echoing_tokens(
    settings: AuthSettings, message: str
) -> None:
    with pytest.raises(TokenError, match=message) as info:
        TokenStore(settings)
    assert TOKEN_A not in str(info.value)


def test_tokens_never_appear_in_the_settings_repr() -> None:
    settings = IngestSettings(auth=AuthSettings(tokens=SecretStr(json.dumps({TOKEN_A: "f"}))))
    assert TOKEN_A not in repr(settings) and TOKEN_A not in str(settings.model_dump())


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"cert_file": Path("c.pem")}, id="cert-without-key"),
        pytest.param({"key_file": Path("k.pem")}, id="key-without-cert"),
        pytest.param({"client_ca_file": Path("ca.pem")}, id="client-ca-alone"),
    ],
)
def test_tls_settings_need_both_files(kwargs: dict[str, Path]) -> None:
    with pytest.raises(ValidationError, match="tls"):
        TlsSettings(**kwargs)
