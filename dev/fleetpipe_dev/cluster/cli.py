"""``fleetpipe dev cluster up | down | status``."""

from __future__ import annotations

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
