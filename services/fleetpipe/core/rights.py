"""Whether this client's Kafka principal may write what a service produces, said before it does.

A principal with no WRITE right on any topic is refused an idempotent producer id
(``CLUSTER_AUTHORIZATION_FAILED``; a transactional id it may not use,
``TRANSACTIONAL_ID_AUTHORIZATION_FAILED``). librdkafka makes that a fatal error of the
producer, seen only at a later produce or flush, after the service said it was ready; one
without WRITE on some of its topics learns it record by record. The broker tells a client what
it may do with each topic it describes (the metadata's authorized operations, KIP-430), so a
service asks at start, and stops with one line naming the principal, the topic and the right
when one is missing — before it has produced anything.

Which topics a service writes is :mod:`fleetpipe.core.access`; this module only asks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import confluent_kafka
from confluent_kafka.admin import AclOperation

from fleetpipe.core.errors import KafkaError, KafkaRightMissing
from fleetpipe.core.settings import KafkaSettings

if TYPE_CHECKING:
    from fleetpipe.core.kafka import Admin

_WRITE_GRANTED = frozenset({AclOperation.WRITE, AclOperation.ALL})
_KafkaError = confluent_kafka.KafkaError


def principal_of(kafka: KafkaSettings) -> str:
    """The principal the broker sees for ``kafka``'s login (``User:ANONYMOUS`` without SASL)."""
    return f"User:{kafka.sasl_username or 'ANONYMOUS'}"


def producer_refusal(
    err: Any, *, principal: str, transactional_id: str | None = None
) -> KafkaRightMissing | None:
    """The right a producer's fatal ``err`` says its principal lacks, or None when ``err`` is
    not an authorization refusal. ``err`` is the library's error (duck-typed: ``code()``,
    ``name()``, ``str()``)."""
    code = err.code()
    said = f"{err.name()}: {err.str()}"
    if code == _KafkaError.CLUSTER_AUTHORIZATION_FAILED:
        # Since Kafka 3.0 a WRITE right on any topic also grants an idempotent producer id.
        return KafkaRightMissing(
            f"Kafka refused {principal} a producer id: it may write no topic at all ({said}); "
            f"grant {principal} WRITE on the topics this service produces to",
            principal=principal,
            right="WRITE",
        )
    if code == _KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
        which = f" {transactional_id!r}" if transactional_id else ""
        return KafkaRightMissing(
            f"Kafka refused {principal} its transactional id{which} ({said}); grant {principal} "
            "WRITE on that transactional id (a prefix of the consumer group's name)",
            principal=principal,
            right="WRITE on the transactional id",
        )
    if code == _KafkaError.TOPIC_AUTHORIZATION_FAILED:
        return KafkaRightMissing(
            f"Kafka refused {principal} a topic it produces to ({said}); grant {principal} "
            "WRITE on it",
            principal=principal,
            right="WRITE",
        )
    return None


def library_error(exc: BaseException | None) -> Any:
    """The library's error that ``exc`` carries or was caused by, or None.

    A fatal error can surface wrapped: raised from a callback that ran while it was pending,
    it is the cause of the ``SystemError`` the callback met."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        err = exc.args[0] if isinstance(exc, confluent_kafka.KafkaException) and exc.args else None
        if isinstance(err, _KafkaError):
            return err
        exc = exc.__cause__ or exc.__context__
    return None


def refusal_of(
    exc: BaseException | None, principal: str, transactional_id: str | None = None
) -> KafkaRightMissing | None:
    """:func:`producer_refusal` of a client call's exception (None for any other)."""
    err = library_error(exc)
    if err is None:
        return None
    return producer_refusal(err, principal=principal, transactional_id=transactional_id)


class ProducerLogin(Protocol):
    """Who a producer is, for the words of a refusal (:class:`fleetpipe.core.kafka.Producer`)."""

    @property
    def principal(self) -> str: ...

    @property
    def transactional_id(self) -> str | None: ...


def raise_if_refused(exc: BaseException, producer: ProducerLogin) -> None:
    """Raise the right ``exc`` (a producer call's exception) says ``producer``'s principal
    lacks, as :class:`KafkaRightMissing` from ``exc``; return when it says no such thing.

    The library raises a fatal error (a producer id refused) from ``poll()`` and ``flush()``
    rather than through a callback: this is where it gets its words."""
    refused = refusal_of(exc, producer.principal, producer.transactional_id)
    if refused is not None:
        raise refused from exc


def check_write_rights(admin: Admin, topics: Sequence[str], *, principal: str) -> list[str]:
    """Raise :class:`KafkaRightMissing` for the first of ``topics`` the admin client's
    principal may not write; returns the topics it could not tell about (missing, or a
    broker that reports no authorized operations). Failing to ask raises :class:`KafkaError`.
    """
    names = list(dict.fromkeys(topics))
    if not names:
        return []
    try:
        futures = admin.client.describe_topics(
            confluent_kafka.TopicCollection(names),
            request_timeout=admin.timeout_s,
            include_authorized_operations=True,
        )
    except confluent_kafka.KafkaException as exc:
        raise KafkaError(f"describing topics {', '.join(names)} failed: {exc.args[0]}") from exc
    untold: list[str] = []
    for name in names:
        try:
            described = futures[name].result()
        except confluent_kafka.KafkaException as exc:
            err = exc.args[0]
            if err.code() == _KafkaError.TOPIC_AUTHORIZATION_FAILED:
                raise KafkaRightMissing(
                    f"Kafka principal {principal} may not write topic {name}: it may not even "
                    f"describe it ({err.name()}); grant {principal} WRITE on {name}",
                    principal=principal,
                    right="WRITE",
                ) from exc
            if err.code() == _KafkaError.UNKNOWN_TOPIC_OR_PART:
                untold.append(name)  # a missing topic is the topic check's to say
                continue
            raise KafkaError(f"describing topic {name} failed: {err}") from exc
        granted = described.authorized_operations
        if granted is None:
            untold.append(name)
            continue
        if not _WRITE_GRANTED.intersection(granted):
            have = ", ".join(sorted(op.name for op in granted)) or "none"
            raise KafkaRightMissing(
                f"Kafka principal {principal} may not write topic {name} (its rights there: "
                f"{have}); grant {principal} WRITE on {name}",
                principal=principal,
                right="WRITE",
            )
    return untold
