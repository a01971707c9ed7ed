"""``fleetpipe dev cluster up | down | status | install | growth | ...``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from fleetpipe_dev.cliopts import AsJson, print_status

if TYPE_CHECKING:
    from fleetpipe_dev.cluster.node import LocalCluster

cluster_app = typer.Typer(
    help="A one-node Kubernetes with real pods (containerd, runc, CNI bridge, kubelet, "
    "kube-proxy, CoreDNS) in its own network namespace; images from `make image`.",
    no_args_is_help=True,
)
console = Console()


def _say_line(line: str) -> None:
    """A progress line as it is: one line however wide, no markup read into its brackets."""
    console.print(line, soft_wrap=True, markup=False, highlight=False)


def _cluster() -> LocalCluster:
    from fleetpipe_dev.cluster.node import LocalCluster
    from fleetpipe_dev.cluster.settings import ClusterSettings

    return LocalCluster(ClusterSettings())


@cluster_app.command("up")
def cluster_up() -> None:
    """Start the cluster and import `make image`'s images (minutes cold, seconds warm)."""
    from fleetpipe_dev.image.build import read_archives
    from fleetpipe_dev.image.settings import ImageSettings

    archives = read_archives(ImageSettings())
    if not archives:
        raise typer.BadParameter("no images: run `make image` first")
    cluster = _cluster()
    cluster.up(archives, say=console.print)
    ns = f"nsenter --net={cluster.settings.netns_path} --"
    console.print(
        f"[green]up[/]: the API server and the pods are reachable inside the network namespace "
        f"{cluster.settings.netns}:\n  export KUBECONFIG={cluster.kubeconfig}\n"
        f"  {ns} kubectl get pods -A"
    )


@cluster_app.command("down")
def cluster_down() -> None:
    """Stop every process and remove the namespaces, mounts and cgroups the cluster made."""
    cluster = _cluster()
    cluster.down(say=console.print)
    left = {k: v for k, v in cluster.leftovers().items() if v}
    console.print(f"[red]left behind[/]: {left}" if left else "[green]down[/]: nothing left")


@cluster_app.command("status")
def cluster_status(as_json: AsJson = False) -> None:
    """The cluster's processes and whether they run; the node and pods when the API answers."""
    cluster = _cluster()
    status = cluster.status()
    extra = {"kubeconfig": str(cluster.kubeconfig), "netns": cluster.settings.netns}
    print_status(console, status, as_json=as_json, extra=extra)
    if not as_json and status and all(p["running"] for p in status.values()):
        console.print(cluster.kubectl("get", "nodes,pods", "-A", "-o", "wide", check=False))


@cluster_app.command("install")
def cluster_install(
    vehicles: Annotated[
        int, typer.Option(min=1000, help="the FleetPipeline's fleet (1,000 vehicles a partition)")
    ] = 50_000,
    build: Annotated[
        bool, typer.Option(help="build the images first (cached: seconds when nothing changed)")
    ] = True,
) -> None:
    """Everything in one go: images, cluster, the chart with the dev Kafka, PostgreSQL and
    Jaeger, Secrets, and a FleetPipeline sized for two cores; waits until it is Ready."""
    from fleetpipe_dev.cluster.install import (
        FLEET,
        LOAD_JOB,
        NAMESPACE,
        RELEASE,
        Installer,
        InstallSettings,
        PipelineSize,
    )
    from fleetpipe_dev.devtools.manifests import REPO
    from fleetpipe_dev.image.build import build_images, read_archives
    from fleetpipe_dev.image.settings import ImageSettings

    if build:
        archives = build_images(ImageSettings(), REPO, say=console.print)
    else:
        archives = read_archives(ImageSettings())
    if not archives:
        raise typer.BadParameter("no images: run `make image` first, or leave out --no-build")
    cluster = _cluster()
    cluster.up(archives, say=console.print)
    installer = Installer(cluster, InstallSettings(), say=console.print)
    done = installer.install(PipelineSize(vehicles=vehicles))
    ns = f"nsenter --net={cluster.settings.netns_path} --"
    console.print(
        f"[green]ready[/] in {done.ready_s:.0f}s: FleetPipeline {NAMESPACE}/fleet, "
        f"notifications to {done.twilio.api_base_url or 'Twilio'}\n"
        f"  export KUBECONFIG={cluster.kubeconfig}\n"
        f"  {ns} kubectl get fp,pods -n {NAMESPACE}\n"
        f"  a load run (fleet {FLEET}, its token in Secret fleetpipe-loadtest):\n"
        f"  {ns} helm upgrade {RELEASE} helm/fleetpipe -n {NAMESPACE} --reuse-values "
        f"--set loadtest.enabled=true --set loadtest.profile=300:60 --set loadtest.processes=1\n"
        f"  {ns} kubectl logs -n {NAMESPACE} -f job/{LOAD_JOB}"
    )


@cluster_app.command(
    "skaffold",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def cluster_skaffold(ctx: typer.Context) -> None:
    """skaffold against this cluster, e.g. `fleetpipe dev cluster skaffold run -p
    fleetpipe-cluster`: inside its network namespace, with its kubeconfig, the private Docker
    engine of `make image` (started for the run) and helm v3 as skaffold's helm."""
    from fleetpipe_dev.cluster.skaffold import run_skaffold

    code = run_skaffold(_cluster(), list(ctx.args), say=console.print)
    raise typer.Exit(code)


@cluster_app.command("load")
def cluster_load(
    image: Annotated[
        str,
        typer.Argument(
            envvar="SKAFFOLD_IMAGE",
            help="the image to load, under every tag it has (default: $SKAFFOLD_IMAGE, "
            "which skaffold sets for its build hooks)",
            show_default=False,
        ),
    ],
) -> None:
    """Import an image of the Docker engine DOCKER_HOST names into the cluster's containerd,
    as `kind load docker-image` does for kind (the skaffold profile's after-build hook)."""
    from fleetpipe_dev.cluster.skaffold import load_image

    # Plain lines: skaffold relays the hook's output, and a wrapped tag reads badly.
    load_image(_cluster(), image, say=typer.echo)


@cluster_app.command("growth")
def cluster_growth(
    minutes: Annotated[
        float, typer.Option(min=1.0, help="how long the load-test Job sends")
    ] = 20.0,
    vehicles: Annotated[
        int, typer.Option(min=1, help="the load's simulated vehicles, one event a second each")
    ] = 300,
    grow_at: Annotated[
        float, typer.Option(help="minutes into the run: the fleet 50K → 100K vehicles")
    ] = 5.0,
    shrink_at: Annotated[
        float, typer.Option(help="minutes into the run: the fleet back to 50K")
    ] = 14.0,
    interval: Annotated[float, typer.Option(help="seconds between samples")] = 5.0,
    report: Annotated[
        Path | None,
        typer.Option(
            help="the markdown report; the .json and the PNG charts go beside it "
            "[default: benchmarks/reports/growth-in-pods.md in the repository]",
            show_default=False,
        ),
    ] = None,
) -> None:
    """The growth scenario in pods, long, with a report: the chart's load-test Job runs while
    the FleetPipeline grows 50K → 100K vehicles and back; rate, lag, replicas and partitions
    are sampled throughout. Needs `fleetpipe dev cluster install` done. Exits 1 when an event
    was lost or stored twice, an alert episode reopened, or the pipeline did not follow."""
    from fleetpipe_dev.cluster.growth import (
        GrowthPlan,
        GrowthRunner,
        NotInstalled,
        utc_now,
        write_report,
    )
    from fleetpipe_dev.cluster.growth_report import GrowthRun, verdict
    from fleetpipe_dev.devtools.manifests import REPO
    from fleetpipe_loadtest.machine import machine

    plan = GrowthPlan(
        minutes=minutes,
        vehicles=vehicles,
        grow_at=grow_at,
        shrink_at=shrink_at,
        interval_s=interval,
    )
    if problems := plan.problems():
        raise typer.BadParameter("; ".join(problems))
    path = report or REPO / "benchmarks" / "reports" / "growth-in-pods.md"
    command = " ".join(["fleetpipe", *sys.argv[1:]])
    run = GrowthRun(command, utc_now(), machine(), plan.settings())
    try:
        GrowthRunner(_cluster(), plan, say=_say_line).run(run)
    except NotInstalled as exc:
        console.print(f"[red]not ready[/]: {exc}")
        raise typer.Exit(2) from exc
    finally:
        if run.samples:
            written = write_report(run, path)
            console.print("report: " + ", ".join(str(p) for p in written))
    wrong = verdict(run)
    if wrong:
        console.print("[red]FAIL[/]: " + "; ".join(wrong))
        raise typer.Exit(1)
    console.print("[green]pass[/]: nothing lost, nothing stored twice, no episode reopened")
