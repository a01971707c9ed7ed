"""The ``fleetpipe`` command: queries, the fleet simulator, the load test and ``tail``.

The commands a developer's machine adds (the local stack, the demo, benchmarks) come from the
``fleetpipe-dev`` distribution, which registers them through the ``fleetpipe.cli`` entry-point
group; the runtime image does not install it, so there they are simply absent.
"""

from __future__ import annotations

from importlib.metadata import entry_points

import typer

from fleetpipe.deadletters.cli import deadletters_app
from fleetpipe.erasure.cli import erase_command
from fleetpipe.erasure.compaction import audit_from_env
from fleetpipe.lake.cli import lake_app
from fleetpipe.query.cli import query_app
from fleetpipe.schema.cli import db_app
from fleetpipe.tail import tail_command
from fleetpipe_loadtest.cli import loadtest_run_command, simulate_command

PLUGIN_GROUP = "fleetpipe.cli"


def build_app() -> typer.Typer:
    app = typer.Typer(
        help="FleetPipe: real-time vehicle telemetry on Kafka, PostgreSQL and Kubernetes.",
        no_args_is_help=True,
        add_completion=False,
    )
    loadtest_app = typer.Typer(
        help="Load a running pipeline (local or in Kubernetes) and measure it.",
        no_args_is_help=True,
    )
    loadtest_app.command("run")(loadtest_run_command)
    app.add_typer(loadtest_app, name="loadtest")
    app.add_typer(query_app, name="query")
    # The compaction consults the erasure audit, a layer above the lake's own commands.
    app.add_typer(lake_app(audit_from_env), name="lake")
    app.add_typer(deadletters_app, name="deadletters")
    app.add_typer(db_app, name="db")
    app.command("erase")(erase_command)
    app.command("simulate")(simulate_command)
    app.command("tail")(tail_command)
    for plugin in entry_points(group=PLUGIN_GROUP):
        plugin.load()(app)
    return app


def main() -> None:
    build_app()()


if __name__ == "__main__":
    main()
