"""The project's own exceptions, carrying the context a person needs to act on them."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


class FleetPipeError(Exception):
    """Base of every error FleetPipe raises on purpose."""


class ConfigError(FleetPipeError):
    """A setting is missing or wrong."""


def configuration_problem(exc: ValidationError | ConfigError) -> str:
    """A configuration error as one line naming each setting (its FLEET_ variable), no values:
    a value may be a secret."""
    if isinstance(exc, ConfigError):
        return str(exc)
    problems = []
    for err in exc.errors():
        loc = "__".join(str(p) for p in err["loc"]).upper()
        problems.append(f"FLEET_{loc}: {err['msg']}" if loc else str(err["msg"]))
    return "; ".join(problems)


class CodecError(FleetPipeError):
    """Bytes that are not the message they claim to be."""

    def __init__(
        self,
        message: str,
        *,
        type_name: str,
        topic: str | None = None,
        partition: int | None = None,
        offset: int | None = None,
    ) -> None:
        where = ""
        if topic is not None:
            where = f" at {topic}[{partition}]@{offset}"
        super().__init__(f"cannot decode {type_name}{where}: {message}")
        self.type_name = type_name
        self.topic = topic
        self.partition = partition
        self.offset = offset


class KafkaError(FleetPipeError):
    """Kafka refused or failed an operation that FleetPipe cannot silently retry."""


class DeliveryError(KafkaError):
    """One or more produced records were not acknowledged by the broker."""

    def __init__(self, failures: list[str]) -> None:
        shown = "; ".join(failures[:5])
        more = f" (+{len(failures) - 5} more)" if len(failures) > 5 else ""
        super().__init__(f"{len(failures)} record(s) not delivered: {shown}{more}")
        self.failures = failures


class ProducerQueueFull(KafkaError):
    """The producer's local queue stayed full for longer than records may take to deliver."""

    def __init__(self, topic: str, *, waited_s: float) -> None:
        super().__init__(
            f"cannot produce to {topic}: the producer's queue stayed full for {waited_s:.0f}s "
            "(no broker is taking records)"
        )
        self.topic = topic
        self.waited_s = waited_s


class GroupOffsetsUnavailable(KafkaError):
    """A consumer group's coordinator is moving or loading: its offsets cannot be read yet."""

    def __init__(self, group_id: str, reason: str) -> None:
        super().__init__(f"the offsets of consumer group {group_id} are unavailable: {reason}")
        self.group_id = group_id


class KafkaRightMissing(KafkaError):
    """Kafka's authorizer refuses this client's principal a right the service needs: nothing
    will change until an ACL does, so the service stops and says which right is missing."""

    def __init__(self, message: str, *, principal: str, right: str) -> None:
        super().__init__(message)
        self.principal = principal
        self.right = right
