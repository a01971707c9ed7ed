"""The operator's own Kafka login: the pipeline's shared credentials and the CA it names.

The services find the broker's CA in a file mounted from ``kafka.caSecret``
(:mod:`fleet_operator.credentials`); the operator, whose Pod mounts no pipeline's Secret, reads
the same Secret through the API for each reconcile and hands the certificate to its admin
client as PEM (librdkafka's ``ssl.ca.pem``), so a broker with a private CA is verified as the
services verify it and nothing is written to disk. The CA goes only to a TLS listener: on
PLAINTEXT or SASL_PLAINTEXT it would have nothing to verify.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pydantic import SecretStr

from fleet_operator.credentials import KAFKA_CA_KEY
from fleet_operator.ports import KubeApi
from fleet_operator.spec import FleetPipelineSpec
from fleetpipe.core.settings import KafkaSettings

_TLS = frozenset({"SSL", "SASL_SSL"})


@dataclass(frozen=True)
class KafkaLogin:
    """What the pipeline's Secrets hold for the operator's client (None where they do not)."""

    credentials: Mapping[str, str] | None = None
    ca_pem: str | None = None


def kafka_settings(spec: FleetPipelineSpec, login: KafkaLogin | None = None) -> KafkaSettings:
    """The operator's client settings for ``spec``'s brokers, logged in with ``login``."""
    login = login or KafkaLogin()
    creds = login.credentials or {}
    password = creds.get("password")
    tls = spec.kafka.security_protocol in _TLS
    return KafkaSettings(
        bootstrap_servers=spec.kafka.bootstrap_servers,
        security_protocol=spec.kafka.security_protocol,
        sasl_mechanism=spec.kafka.sasl_mechanism,
        sasl_username=creds.get("username"),
        sasl_password=SecretStr(password) if password is not None else None,
        ssl_ca_pem=login.ca_pem if tls else None,
    )


def read_login(
    kube: KubeApi, namespace: str, spec: FleetPipelineSpec, *, missing: Sequence[str] | None
) -> KafkaLogin:
    """The shared credentials (``kafka.credentialsSecret``) and the CA (``kafka.caSecret``
    key ``ca.crt``) of a pipeline in ``namespace``; ``missing``: the Secrets known missing,
    if that was asked already. A missing Secret leaves its part out: the missing-Secret
    condition names it, and the broker's refusal says the rest."""
    named = [s for s in (spec.kafka.credentials_secret, spec.kafka.ca_secret) if s]
    if not named:
        return KafkaLogin()
    absent = set(kube.missing_secrets(namespace, named) if missing is None else missing)
    credentials: dict[str, str] | None = None
    secret = spec.kafka.credentials_secret
    if secret and secret not in absent:
        credentials = kube.secret_values(namespace, secret, ("username", "password"))
    ca_pem: str | None = None
    ca = spec.kafka.ca_secret
    if ca and ca not in absent:
        ca_pem = kube.secret_values(namespace, ca, (KAFKA_CA_KEY,)).get(KAFKA_CA_KEY)
    return KafkaLogin(credentials, ca_pem)
