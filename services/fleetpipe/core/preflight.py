"""A service's look at its Kafka rights before it starts, so that a principal that may not
write what the service produces stops it at once, in one line, with nothing produced.

The rights asked for are those :mod:`fleetpipe.core.access` gives the service's principal
(WRITE on each topic it produces to); a stage that has no principal of its own there is held
to its dead-letter topic, which every stage writes. A broker that cannot be asked now (down,
or too slow) is noted and let be: the producer's own refusal still stops the service later
(:mod:`fleetpipe.core.deliveries`), only less early.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from fleetpipe.core.access import Principal, written_topics
from fleetpipe.core.errors import KafkaError, KafkaRightMissing
from fleetpipe.core.kafka import build_admin
from fleetpipe.core.rights import check_write_rights, principal_of
from fleetpipe.core.settings import KafkaSettings, Topics

log = logging.getLogger(__name__)

# The exit status of a service whose principal lacks a right: restarting will not help until
# an ACL changes (2 is a bad setting's).
EXIT_KAFKA_REFUSED = 3


def topics_written_by(service: str, topics: Topics) -> list[str]:
    """What ``service`` produces to, by its principal's rules (its dead letters otherwise)."""
    try:
        principal = Principal(service)
    except ValueError:
        return [topics.deadletter]
    return written_topics(principal, topics) or [topics.deadletter]


def check_kafka_rights(kafka: KafkaSettings, topics: Sequence[str], *, timeout_s: float) -> None:
    """Raise :class:`~fleetpipe.core.errors.KafkaRightMissing` when ``kafka``'s principal
    may not write one of ``topics``; any other failure to ask is logged, not raised."""
    principal = principal_of(kafka)
    try:
        untold = check_write_rights(
            build_admin(kafka, timeout_s=timeout_s), topics, principal=principal
        )
    except KafkaRightMissing:
        raise  # the answer, not a failure to get one
    except KafkaError as exc:
        log.warning("cannot check the Kafka rights of %s now: %s", principal, exc)
        return
    checked = [t for t in topics if t not in untold]
    log.info("%s may write %s", principal, ", ".join(checked) or "(nothing checked)")
