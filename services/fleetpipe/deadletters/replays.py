"""The record of what was replayed: one row per dead letter sent back to its source topic.

A replay claims its dead letters in one transaction (a row each, inserted unless there is one)
and commits it only once Kafka has every replayed record: a replay that fails records nothing,
and two replays of the same dead letters at once send them once (the second waits on the
first's rows, then finds them there).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from fleetpipe.core.db import PostgresSettings, load_migrations, migrate_when_ready
from fleetpipe.deadletters.inbox import Replay

COMPONENT = "deadletters"


@dataclass(frozen=True)
class Earlier:
    """A dead letter replayed before: when, by whom, how often."""

    at: str
    replayed_at: datetime
    replayed_by: str
    replays: int


def migrate(postgres: PostgresSettings, *, timeout_s: float = 30) -> None:
    migrate_when_ready(
        postgres,
        application_name="fleetpipe-deadletters",
        component=COMPONENT,
        migrations=load_migrations("fleetpipe.deadletters"),
        timeout_s=timeout_s,
    )


def claim(
    conn: psycopg.Connection[Any],
    topic: str,
    replays: list[Replay],
    *,
    by: str,
    again: bool,
) -> tuple[list[Replay], list[Earlier]]:
    """Within the caller's transaction: the replays to send (not replayed before, or all with
    ``again``) and what was replayed before. Rows stay locked until the transaction ends."""
    send: list[Replay] = []
    earlier: list[Earlier] = []
    for r in replays:
        d = r.letter
        row = conn.execute(
            "INSERT INTO dead_letter_replays (dead_letter_topic, dead_letter_partition,"
            " dead_letter_offset, target_topic, reason, replayed_by)"
            " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING 1",
            (topic, d.partition, d.offset, r.topic, d.letter.reason, by),
        ).fetchone()
        if row is not None:
            send.append(r)
            continue
        before = conn.execute(
            "SELECT replayed_at, replayed_by, replays FROM dead_letter_replays"
            " WHERE dead_letter_topic = %s AND dead_letter_partition = %s"
            " AND dead_letter_offset = %s FOR UPDATE",
            (topic, d.partition, d.offset),
        ).fetchone()
        assert before is not None
        earlier.append(Earlier(d.at, before[0], str(before[1]), int(before[2])))
        if again:
            conn.execute(
                "UPDATE dead_letter_replays SET replays = replays + 1, replayed_at = now(),"
                " replayed_by = %s, target_topic = %s WHERE dead_letter_topic = %s"
                " AND dead_letter_partition = %s AND dead_letter_offset = %s",
                (by, r.topic, topic, d.partition, d.offset),
            )
            send.append(r)
    return send, earlier
