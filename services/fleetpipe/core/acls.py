"""The broker side of least privilege: SCRAM users and ACLs, through the admin client.

What each principal may do is :mod:`fleetpipe.core.access` (pure); this module writes it to the
cluster. Both calls are idempotent: creating an ACL that exists or setting a user's password
again changes nothing, so a stack provisions itself on every start.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import confluent_kafka
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialAlteration,
    UserScramCredentialUpsertion,
)

from fleetpipe.core.access import AccessRule, Operation, Pattern, Resource
from fleetpipe.core.errors import KafkaError
from fleetpipe.core.kafka import Admin, KafkaException
from fleetpipe.core.settings import KafkaSettings

# SCRAM's iteration count: Kafka's minimum is 4096; the hash is computed once per connection.
SCRAM_ITERATIONS = 8192

_RESOURCE = {
    Resource.TOPIC: ResourceType.TOPIC,
    Resource.GROUP: ResourceType.GROUP,
    Resource.TRANSACTIONAL_ID: ResourceType.TRANSACTIONAL_ID,
    Resource.CLUSTER: ResourceType.BROKER,
}
_OPERATION = {
    Operation.READ: AclOperation.READ,
    Operation.WRITE: AclOperation.WRITE,
    Operation.DESCRIBE: AclOperation.DESCRIBE,
    Operation.CREATE: AclOperation.CREATE,
    Operation.ALTER: AclOperation.ALTER,
    Operation.DESCRIBE_CONFIGS: AclOperation.DESCRIBE_CONFIGS,
    Operation.ALTER_CONFIGS: AclOperation.ALTER_CONFIGS,
}
_PATTERN = {
    Pattern.LITERAL: ResourcePatternType.LITERAL,
    Pattern.PREFIXED: ResourcePatternType.PREFIXED,
}

# Kafka's error codes that mean "the broker refused this principal", as opposed to a failure.
_REFUSED = {
    confluent_kafka.KafkaError.TOPIC_AUTHORIZATION_FAILED,
    confluent_kafka.KafkaError.GROUP_AUTHORIZATION_FAILED,
    confluent_kafka.KafkaError.CLUSTER_AUTHORIZATION_FAILED,
    confluent_kafka.KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
}


def _binding(rule: AccessRule) -> AclBinding:
    return AclBinding(
        _RESOURCE[rule.resource],
        rule.name,
        _PATTERN[rule.pattern],
        f"User:{rule.principal}",
        "*",
        _OPERATION[rule.operation],
        AclPermissionType.ALLOW,
    )


def apply_acls(admin: Admin, rules: Sequence[AccessRule]) -> int:
    """Create an ALLOW binding per rule (those that exist stay as they are); returns how many
    bindings were sent."""
    # One binding once: the broker answers a duplicate within a request with an error.
    bindings = list({rule: _binding(rule) for rule in rules}.values())
    if not bindings:
        return 0
    futures = admin.client.create_acls(bindings, request_timeout=admin.timeout_s)
    for binding, future in futures.items():
        try:
            future.result()
        except KafkaException as exc:
            raise KafkaError(f"creating ACL {binding} failed: {exc.args[0]}") from exc
    return len(bindings)


def delete_acls(admin: Admin, rules: Sequence[AccessRule]) -> int:
    """Delete the ALLOW binding of each rule (one that is gone already is no error); returns
    how many bindings the broker deleted."""
    filters = list(
        {
            rule: AclBindingFilter(
                _RESOURCE[rule.resource],
                rule.name,
                _PATTERN[rule.pattern],
                f"User:{rule.principal}",
                "*",
                _OPERATION[rule.operation],
                AclPermissionType.ALLOW,
            )
            for rule in rules
        }.values()
    )
    if not filters:
        return 0
    deleted = 0
    futures = admin.client.delete_acls(filters, request_timeout=admin.timeout_s)
    for binding, future in futures.items():
        try:
            deleted += len(future.result())
        except KafkaException as exc:
            raise KafkaError(f"deleting ACL {binding} failed: {exc.args[0]}") from exc
    return deleted


_MECHANISMS = {
    "SCRAM-SHA-256": ScramMechanism.SCRAM_SHA_256,
    "SCRAM-SHA-512": ScramMechanism.SCRAM_SHA_512,
}


def upsert_scram_users(
    admin: Admin, passwords: Mapping[str, str], *, mechanism: str = "SCRAM-SHA-512"
) -> None:
    """Create each SCRAM user (``mechanism``), or set its password when it exists."""
    if not passwords:
        return
    upserts: list[UserScramCredentialAlteration] = [
        UserScramCredentialUpsertion(
            user,
            ScramCredentialInfo(_MECHANISMS[mechanism], SCRAM_ITERATIONS),
            password.encode(),
        )
        for user, password in sorted(passwords.items())
    ]
    futures = admin.client.alter_user_scram_credentials(upserts, request_timeout=admin.timeout_s)
    for user, future in futures.items():
        try:
            future.result()
        except KafkaException as exc:
            # The error names the user, never the password.
            raise KafkaError(
                f"setting the SCRAM credentials of {user} failed: {exc.args[0]}"
            ) from exc


def refusal(exc: BaseException) -> str | None:
    """The broker's authorization refusal carried by ``exc``, as one line; None when ``exc``
    is not one (a delivery report's error, a client call's exception)."""
    err = exc.args[0] if isinstance(exc, KafkaException) and exc.args else exc
    if isinstance(err, confluent_kafka.KafkaError) and err.code() in _REFUSED:
        return f"{err.name()}: {err.str()}"
    return None


def check_login(kafka: KafkaSettings, *, timeout_s: float = 10.0) -> int:
    """Log in and count the cluster's brokers; a refused login raises :class:`KafkaError`
    with the broker's reason in one line (the client itself only says that no broker
    answered)."""
    refused: list[str] = []

    def on_error(err: confluent_kafka.KafkaError) -> None:
        if err.code() == confluent_kafka.KafkaError._AUTHENTICATION:
            refused.append(err.str())

    # A plain producer: its poll() serves the error callback, where librdkafka reports why a
    # login failed (an admin client's metadata call only times out).
    client = confluent_kafka.Producer(
        {**kafka.client_config(), "error_cb": on_error, "log_level": 0}
    )
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return len(client.list_topics(timeout=1.0).brokers)
        except KafkaException as exc:
            client.poll(0.1)
            if refused:
                raise KafkaError(
                    f"Kafka refused the login of {kafka.sasl_username}: {refused[0]}"
                ) from exc
            if time.monotonic() >= deadline:
                raise KafkaError(
                    f"Kafka at {kafka.bootstrap_servers} did not answer: {exc}"
                ) from exc
