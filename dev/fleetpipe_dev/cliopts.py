"""The options and the status table the developer's commands share.

Each benchmark command takes the same ``--runs`` and ``--report`` (only the defaults differ:
they stay on the command) and ``dev status`` and ``dev kube status`` print the same status,
so a change to the wording or the bounds lands on every command at once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

Partitions = Annotated[
    int, typer.Option(min=1, max=10_000, help="partitions of each pipeline topic")
]
Runs = Annotated[int, typer.Option(min=1, max=20, help="runs; the median is reported")]
Report = Annotated[Path, typer.Option(help="where to write the Markdown report")]
AsJson = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def print_status(
    console: Console,
    status: Mapping[str, Mapping[str, Any]],
    *,
    as_json: bool,
    extra: Mapping[str, str] | None = None,
) -> None:
    """One row per started process: its pid, whether it still runs and its address.

    ``extra`` (say the kubeconfig) goes first into the JSON and, when something runs, after
    the table as ``NAME=value`` lines a shell can use.
    """
    extra = extra or {}
    if as_json:
        console.print_json(json.dumps({**extra, **status}))
        return
    table = Table("component", "pid", "running", "address")
    for name, proc in status.items():
        table.add_row(
            name,
            str(proc["pid"]),
            "yes" if proc["running"] else "[red]no[/]",
            str(proc.get("address", "")),
        )
    console.print(table if status else "nothing started")
    if status:
        for name, value in extra.items():
            console.print(f"{name.upper()}={value}")
