"""``fleetpipe dev kube up | down | status`` and ``fleetpipe bench operator``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from fleetpipe_dev.cliopts import AsJson, Report, Runs, print_status
from fleetpipe_dev.stack.devstack import DevStackSettings
from fleetpipe_dev.stack.kube import KubeDevSettings, KubeStack

kube_app = typer.Typer(
    help="A local Kubernetes control plane (etcd, kube-apiserver, controller-manager, "
    "scheduler) with kwok fake nodes, for the operator.",
    no_args_is_help=True,
)
console = Console()


def _stack() -> KubeStack:
    return KubeStack(KubeDevSettings(), DevStackSettings().home)


@kube_app.command("up")
def kube_up() -> None:
    """Start the control plane and the kwok nodes; writes a kubeconfig."""
    stack = _stack()
    stack.up(say=console.print)
    console.print(f"[green]up[/]: export KUBECONFIG={stack.cluster.kubeconfig}")


@kube_app.command("down")
def kube_down(
    purge: Annotated[
        bool, typer.Option(help="also delete etcd's data and the certificates")
    ] = False,
) -> None:
    """Stop what `dev kube up` started, and nothing else."""
    _stack().down(purge=purge, say=console.print)


@kube_app.command("status")
def kube_status(
    as_json: AsJson = False,
) -> None:
    """Show the control plane's processes and whether they still run."""
    stack = _stack()
    kubeconfig = {"kubeconfig": str(stack.cluster.kubeconfig)}
    print_status(console, stack.status(), as_json=as_json, extra=kubeconfig)


def bench_operator(
    runs: Runs = 5,
    nodes: Annotated[int, typer.Option(min=1, max=50, help="kwok nodes")] = 3,
    report: Report = Path("benchmarks/reports/operator.md"),
) -> None:
    """Seconds from a FleetPipeline's 50K → 100K vehicles patch to Ready (real API server)."""
    from fleetpipe_dev.bench.operator import run_operator_bench

    run_operator_bench(runs=runs, nodes=nodes, report=report, console=console)
