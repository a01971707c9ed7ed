"""What every benchmark sets up before it measures, and how it reports.

A benchmark starts the dev stack, makes topics whose names carry a suffix of its own (so that no
run reads another's records, and nothing is left behind), keeps its processes' logs in a folder
beside the report, talks to a console, and writes a report headed by when and with what command
it was measured. :class:`BenchSession` holds all that, so that a benchmark module says only what
it measures.
"""

from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from fleetpipe.core.kafka import Admin, build_admin
from fleetpipe.core.settings import KafkaSettings, Topics
from fleetpipe.core.topics import TopicSpec
from fleetpipe_dev.bench.harness import RunResult, Summary, markdown_table, write_report
from fleetpipe_dev.stack.devstack import DevStack
from fleetpipe_loadtest.machine import machine


@dataclass
class BenchSession:
    """One benchmark's stack, topics, log folder, console and report.

    Used as a context manager, it deletes on exit every topic it created.
    """

    stack: DevStack
    report: Path
    console: Console
    suffix: str
    admin: Admin
    _created: list[str] = field(default_factory=list)

    @classmethod
    def start(
        cls, stack: DevStack, *, name: str, partitions: int, report: Path, console: Console
    ) -> BenchSession:
        """Start the dev stack (its own topics at ``partitions``); this session's topics and
        groups end in ``<name><unix time>``."""
        stack.up(topics=Topics(), partitions=partitions, say=lambda *_: None)
        return cls(
            stack=stack,
            report=report,
            console=console,
            suffix=f"{name}{int(time.time())}",
            admin=build_admin(stack.kafka_settings),
        )

    @property
    def kafka(self) -> KafkaSettings:
        return self.stack.kafka_settings

    def topics(self, *parts: str) -> Topics:
        """The pipeline's topic names ending in this session's suffix, then ``parts``."""
        return Topics.with_suffix(".".join([self.suffix, *parts]))

    def create_topics(self, specs: Iterable[TopicSpec]) -> list[str]:
        """Create the topics of ``specs``; they are deleted when the session closes.

        Returns once the cluster's metadata shows each with its partitions (as
        ``Admin.ensure_topics`` does), so the benchmark's producers never meet "unknown topic".
        """
        wanted = list(specs)
        names = [s.name for s in wanted]
        # Recorded first: topics created whose metadata then fails to show in time are
        # deleted on exit all the same.
        self._created += names
        self.admin.ensure_topics(wanted)
        return names

    def delete_topics(self) -> None:
        """Delete every topic this session created (so far)."""
        if self._created:
            self.admin.delete_topics(self._created)
            self._created = []

    def __enter__(self) -> BenchSession:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.delete_topics()

    def logs(self, *parts: str) -> Path:
        """The folder for the runs' logs and files, ``logs/<parts>`` beside the report."""
        folder = self.report.parent.joinpath("logs", *parts)
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    @property
    def command(self) -> str:
        """The command line that ran the benchmark, as the report quotes it."""
        return "fleetpipe " + " ".join(shlex.quote(a) for a in sys.argv[1:])

    def heading(self, title: str) -> list[str]:
        """The report's first lines: its title, and when and with what it was measured."""
        self.report.parent.mkdir(parents=True, exist_ok=True)
        return [
            f"# {title}",
            "",
            f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC with `{self.command}`.",
            "",
        ]

    def write_report(
        self,
        markdown: Sequence[str],
        results: Mapping[str, Sequence[RunResult]],
        *,
        fields: Mapping[str, Any],
        digits: int = 1,
    ) -> None:
        """The Markdown report and its JSON twin (see :func:`harness.write_report`)."""
        write_report(
            self.report,
            markdown,
            results,
            command=self.command,
            env=machine(),
            fields=fields,
            digits=digits,
        )

    def finish(self, summaries: Sequence[Summary]) -> None:
        """Show the figures and where the report is."""
        self.console.print(markdown_table(summaries))
        self.console.print(f"report: {self.report}")
