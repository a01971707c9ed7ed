"""Sealing: how a new transactional producer ends what a restarted broker left open.

A single-replica broker that restarts uncleanly can complete a transaction without writing its
markers: its coordinator takes partitions whose leader its metadata does not know yet for
deleted and skips them ("these partitions are likely deleted already and hence can be
skipped"). The transaction's records then stay open in those partitions. Read-committed readers
stop at them; a group's transactional offsets stay pending, and a consumer that asks for its
committed offsets (as a read-committed one does, requiring them stable) waits without end; a
state restore reads the state of before that transaction while the input offsets moved on.

Only the producer that wrote such a transaction can end it: a marker for a partition ends the
open transaction of its producer id there, whatever the epoch. A restarted stage's producer has
the same transactional id, hence the same producer id, so one committed transaction of it that
touches those partitions ends them as its coordinator decided (commit, in every case seen). The
stage seals, right after ``init_transactions`` and before it reads any committed offset or state:

- the state changelogs it restores from, with a tombstone of :data:`SEAL_KEY` in every partition
  (a tombstone of a key no reader keeps removes nothing);
- its group's offsets, through a *sibling group* whose name starts with the group's (so the
  group's ACL prefix covers it) and hashes as the group's does, so its offsets live in the same
  ``__consumer_offsets`` partition whatever that topic's partition count: the seal's marker there
  completes the pending offsets of the producer, for every group. The group's own offsets are
  not written (that would replace the pending ones); the sibling's one offset is a bookmark of
  no use to anyone.

Output partitions read by other stages are not sealed: the stage's next transaction that writes
to one ends what was left open there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import confluent_kafka

from fleetpipe.core.kafka import Producer
from fleetpipe.core.settings import KafkaSettings

log = logging.getLogger(__name__)

# The key of the tombstones that seal a state changelog: a NUL first byte, which no vehicle id
# or state key has.
SEAL_KEY = b"\x00fleetpipe-seal"

_SIBLING_INFIX = ".seal."
_DIGITS = 7  # 31**7 > 2**32: seven base-31 digits reach every 32-bit hash
_ZERO = ord("0")  # digits are written as "0" .. "N" (48 .. 78)


def java_hash(text: str) -> int:
    """Java's ``String.hashCode`` (32-bit, signed), by which Kafka places a group's offsets:
    partition = Utils.abs(hash) % partitions of ``__consumer_offsets``."""
    data = text.encode("utf-16-be")  # Java strings are UTF-16 code units
    h = 0
    for i in range(0, len(data), 2):
        h = (31 * h + (data[i] << 8 | data[i + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h & 0x80000000 else h


def sibling_group(group: str) -> str:
    """A group name that starts with ``group`` and has its hash, so Kafka keeps both groups'
    offsets in the same ``__consumer_offsets`` partition."""
    stem = group + _SIBLING_INFIX
    mask = 0xFFFFFFFF
    # hash(stem + w) = hash(stem) * 31**7 + hash(w) (mod 2**32); hash(w) must make up the rest.
    want = (java_hash(group) - java_hash(stem) * 31**_DIGITS) & mask
    # w's characters are ZERO + d for base-31 digits d: hash(w) = hash(ZERO * 7) + value(d).
    value = (want - java_hash(chr(_ZERO) * _DIGITS)) & mask
    digits = []
    for _ in range(_DIGITS):
        value, d = divmod(value, 31)
        digits.append(chr(_ZERO + d))
    sibling = stem + "".join(reversed(digits))
    assert java_hash(sibling) == java_hash(group)
    return sibling


class Sealer:
    """Seals for one loop (see the module's docstring). The sibling group's metadata comes
    from a consumer of that group which never subscribes; it is made on the first seal and
    kept until :meth:`close`, rather than a new client per seal."""

    def __init__(
        self,
        kafka: KafkaSettings,
        *,
        group_id: str,
        input_topic: str,
        changelogs: Sequence[str],
    ) -> None:
        self._kafka = kafka
        self._group_id = group_id
        self._input_topic = input_topic
        self._changelogs = tuple(changelogs)
        self._sibling: confluent_kafka.Consumer | None = None

    def _group(self) -> object:
        if self._sibling is None:
            self._sibling = confluent_kafka.Consumer(
                {
                    **self._kafka.client_config(),
                    "group.id": sibling_group(self._group_id),
                    "log_level": 3,
                }
            )
        return self._sibling.consumer_group_metadata()

    def seal(
        self,
        producer: Producer,
        *,
        transactional: Callable[[str, Callable[[float], object]], None],
    ) -> None:
        """Commit one transaction of ``producer`` (just initialised) that touches the group's
        offsets partition, through its sibling group, and every partition of the changelogs.
        ``transactional`` runs a transaction step with the loop's bounds and retries."""
        client = producer.client
        group = self._group()
        client.begin_transaction()
        for topic in self._changelogs:
            for partition in range(producer.partitions(topic)):
                producer.produce(topic, None, SEAL_KEY, partition=partition)
        # The sibling's only offset: a bookmark, never read.
        bookmark = [confluent_kafka.TopicPartition(self._input_topic, 0, 0)]
        transactional(
            "send_offsets_to_transaction",
            lambda t: client.send_offsets_to_transaction(bookmark, group, t),
        )
        transactional("commit_transaction", client.commit_transaction)
        producer.raise_for_failures()
        log.info("sealed the group's offsets and %s", ", ".join(self._changelogs) or "no changelog")

    def close(self) -> None:
        if self._sibling is not None:
            self._sibling.close()
            self._sibling = None
