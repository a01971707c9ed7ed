"""The operator's admin clients are kept per login: a rotated password gets a new client, and the
old one goes; the key names the login without holding its secret."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from fleet_operator.cluster import KafkaGateway, login_key
from fleetpipe.core.settings import KafkaSettings

pytestmark = pytest.mark.unit


def _settings(password: str, *, servers: str = "broker-0:9093") -> KafkaSettings:
    return KafkaSettings(
        bootstrap_servers=servers,
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="operator",
        sasl_password=SecretStr(password),
    )


def test_the_login_key_tells_passwords_apart_without_holding_them() -> None:
    old, new = _settings("old-password-1"), _settings("new-password-2")
    assert old.model_dump_json() == new.model_dump_json(), "the JSON masks the secret"
    assert login_key(old) != login_key(new)
    assert login_key(old) == login_key(_settings("old-password-1"))
    assert "old-password-1" not in login_key(old)


def test_a_rotated_password_gets_a_new_admin_client_and_the_old_one_goes() -> None:
    gateway = KafkaGateway(timeout_s=1.0)
    first = gateway._admin(_settings("old-password-1"))
    assert gateway._admin(_settings("old-password-1")) is first, "reused while unchanged"
    rotated = gateway._admin(_settings("new-password-2"))
    assert rotated is not first
    assert gateway.logins == 1, "the client of the old password is dropped"
    other = gateway._admin(_settings("new-password-2", servers="broker-1:9093"))
    assert other is not rotated and gateway.logins == 2, "another connection keeps its own"
