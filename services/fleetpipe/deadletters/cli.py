"""``fleetpipe deadletters list | show | replay``."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import psycopg
import typer
from pydantic_settings import BaseSettings, SettingsConfigDict
from rich.console import Console
from rich.table import Table

from fleetpipe.core.db import DatabaseUnavailable, PostgresSettings, connect
from fleetpipe.core.errors import ConfigError
from fleetpipe.core.operators import OPERATOR_ENV, operator_name
from fleetpipe.core.settings import KafkaSettings, Topics
from fleetpipe.deadletters import inbox, replays
from fleetpipe.deadletters.inbox import DeadLetter, DeadLetterError

deadletters_app = typer.Typer(
    help="The dead-letter topic: list by reason and source, show one, replay after a fix.",
    no_args_is_help=True,
)


class _Settings(BaseSettings):
    """The pipeline's Kafka and topic names, from the services' own ``FLEET_*`` variables."""

    model_config = SettingsConfigDict(
        env_prefix="FLEET_", env_nested_delimiter="__", frozen=True, extra="ignore"
    )

    kafka: KafkaSettings = KafkaSettings()
    topics: Topics = Topics()
    # Where replays are recorded (replay only).
    postgres: PostgresSettings = PostgresSettings()


ReasonOption = Annotated[str, typer.Option("--reason", help="Only this reason.")]
SourceOption = Annotated[str, typer.Option("--source", help="Only this source topic.")]


def _chosen(letters: list[DeadLetter], reason: str, source: str) -> list[DeadLetter]:
    return [
        d
        for d in letters
        if (not reason or d.letter.reason == reason)
        and (not source or d.letter.source_topic == source)
    ]


def _fail(exc: Exception) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(1)


@deadletters_app.command("list")
def list_command(
    reason: ReasonOption = "",
    source: SourceOption = "",
    records: Annotated[
        bool, typer.Option("--records", help="One line per dead letter, not counts.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines.")] = False,
) -> None:
    """Dead letters counted by reason, source topic and service (or listed one by one)."""
    settings = _Settings()
    try:
        letters = _chosen(inbox.read(settings.kafka, settings.topics.deadletter), reason, source)
    except DeadLetterError as exc:
        raise _fail(exc) from exc
    console = Console()
    rows: list[dict[str, object]]
    if records:
        rows = [
            {
                "at": d.at,
                "time": datetime.fromtimestamp(d.timestamp_ms / 1000, UTC).isoformat(),
                "reason": d.letter.reason,
                "source": f"{d.letter.source_topic}/{d.letter.source_partition}"
                f"/{d.letter.source_offset}",
                "service": d.letter.service,
                "error": d.letter.error[:120],
            }
            for d in letters
        ]
    else:
        rows = [
            {"reason": r, "source": s, "service": svc, "count": n}
            for r, s, svc, n in inbox.summary(letters)
        ]
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row))
        return
    table = Table(title=f"{settings.topics.deadletter}: {len(letters)} dead letter(s)")
    for name in rows[0] if rows else ("reason", "source", "service", "count"):
        table.add_column(name)
    for row in rows:
        table.add_row(*(str(v) for v in row.values()))
    console.print(table)


def _text(value: str | bytes | None) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value or ""


@deadletters_app.command("show")
def show_command(
    at: Annotated[str, typer.Argument(help="PARTITION:OFFSET in the dead-letter topic.")],
) -> None:
    """One dead letter: its headers, why it failed, where from, and its payload decoded as its
    source topic's message."""
    settings = _Settings()
    try:
        (d,) = inbox.read(settings.kafka, settings.topics.deadletter, at=[inbox.parse_at(at)])
    except DeadLetterError as exc:
        raise _fail(exc) from exc
    letter = d.letter
    shown = {
        "at": d.at,
        "headers": {k: _text(v) for k, v in d.headers},
        "reason": letter.reason,
        "error": letter.error,
        "service": letter.service,
        "source": {
            "topic": letter.source_topic,
            "partition": letter.source_partition,
            "offset": letter.source_offset,
        },
        "key": letter.key.decode("utf-8", "replace"),
        "payload_bytes": len(letter.payload),
        "payload": inbox.decoded_payload(settings.topics, letter),
    }
    typer.echo(json.dumps(shown, indent=2))


@deadletters_app.command("replay")
def replay_command(
    at: Annotated[
        list[str] | None, typer.Option("--at", help="PARTITION:OFFSET; repeat for more.")
    ] = None,
    reason: ReasonOption = "",
    source: SourceOption = "",
    to: Annotated[str, typer.Option("--to", help="Send to this topic, not the source.")] = "",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be sent.")] = False,
    again: Annotated[
        bool,
        typer.Option("--again", help="Replay also those replayed before (after another fix)."),
    ] = False,
    by: Annotated[
        str,
        typer.Option(
            "--by",
            envvar=OPERATOR_ENV,
            help="Who replays (recorded); default: the system's name for the user.",
        ),
    ] = "",
) -> None:
    """Send chosen dead letters back to their source topic (after the fix that makes them
    pass). Each replay is recorded in PostgreSQL: the dead letters replayed before are not
    sent again (unless --again), and an event already stored is not stored twice."""
    if not at and not reason and not source:
        raise _fail(DeadLetterError("choose what to replay: --at, --reason or --source"))
    settings = _Settings()
    try:
        replayed_by = operator_name(by) if not dry_run else ""
        positions = [inbox.parse_at(a) for a in at] if at else None
        letters = inbox.read(settings.kafka, settings.topics.deadletter, at=positions)
        planned = inbox.plan(settings.topics, _chosen(letters, reason, source), to=to)
        if not planned:
            raise DeadLetterError("no dead letter matches")
        for r in planned:
            typer.echo(f"{r.letter.at} ({r.letter.letter.reason}) -> {r.topic}")
        if dry_run:
            typer.echo(f"{len(planned)} dead letter(s) would be replayed")
            return
        topic = settings.topics.deadletter
        replays.migrate(settings.postgres)
        with (
            connect(settings.postgres, application_name="fleetpipe-deadletters") as conn,
            conn.transaction(),
        ):
            # Recorded when the transaction commits: after Kafka has every record sent.
            send, earlier = replays.claim(conn, topic, planned, by=replayed_by, again=again)
            sent = inbox.replay(settings.kafka, topic, send) if send else 0
    except (DeadLetterError, DatabaseUnavailable, psycopg.Error, ConfigError) as exc:
        raise _fail(exc) from exc
    for e in earlier:
        typer.echo(
            f"{e.at} was replayed before ({e.replays} time(s), last {e.replayed_at.isoformat()}"
            f" by {e.replayed_by or '-'})" + ("" if again else ": not sent again")
        )
    if earlier and not again:
        typer.echo(f"{len(earlier)} dead letter(s) already replayed: nothing sent for them")
    typer.echo(f"{sent} dead letter(s) replayed")
