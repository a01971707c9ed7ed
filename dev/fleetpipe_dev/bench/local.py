"""The five services on the dev stack for one benchmark or drill: topics, schema, Twilio.

What :mod:`fleetpipe_dev.bench.pipeline` and :mod:`fleetpipe_dev.bench.faults` both need: the
session's topics at a partition count, the services as processes in a schema of their own, the
Twilio-contract server, and the :class:`Watch` the load driver reads the stages' lag from. The
schema is dropped on exit (its rows were measured by then).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from fleetpipe.core.topics import topic_specs
from fleetpipe_dev.bench.session import BenchSession
from fleetpipe_dev.stack.pipeline import DEFAULT_SMS_FROM, LocalPipeline, PipelineConfig
from fleetpipe_dev.twilio import TwilioContractServer
from fleetpipe_loadtest.loadrun import Watch


@dataclass(frozen=True)
class RunningPipeline:
    pipeline: LocalPipeline
    config: PipelineConfig
    watch: Watch
    twilio: TwilioContractServer


@contextmanager
def running_pipeline(
    session: BenchSession,
    *,
    partitions: int,
    registry: Path,
    tokens: Mapping[str, str],
    workdir: Path,
    overrides: Mapping[str, str] | None = None,
) -> Iterator[RunningPipeline]:
    stack = session.stack
    kafka = session.kafka
    topics = session.topics()
    suffix = session.suffix
    with session, TwilioContractServer() as twilio:
        session.create_topics(topic_specs(topics, partitions))
        config = PipelineConfig(
            kafka=kafka,
            topics=topics,
            postgres_dsn=stack.postgres_dsn,
            schema=f"bench_{suffix}",
            workdir=workdir,
            registry=registry,
            tokens=dict(tokens),
            twilio_env={
                "FLEET_TWILIO__ACCOUNT_SID": twilio.account_sid,
                "FLEET_TWILIO__AUTH_TOKEN": twilio.auth_token,
                "FLEET_TWILIO__API_BASE_URL": twilio.url,
                "FLEET_TWILIO__SMS_FROM": DEFAULT_SMS_FROM,
            },
            group_suffix=suffix,
            overrides=dict(overrides or {}),
        )
        pipeline = LocalPipeline(config)
        try:
            pipeline.start()
            watch = Watch(
                kafka,
                topics,
                stack.postgres_dsn,
                config.schema,
                {
                    "enrichment": (config.group("enrichment"), topics.raw),
                    "detection": (config.group("detection"), topics.enriched),
                    "storage-writer": (config.group("storage-writer"), topics.enriched),
                    "notification": (config.group("notification"), topics.alerts),
                },
            )
            yield RunningPipeline(pipeline, config, watch, twilio)
        finally:
            pipeline.stop()
            session.delete_topics()
            drop_schema(stack.postgres_dsn, config.schema)


def drop_schema(dsn: str, schema: str) -> None:
    with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
