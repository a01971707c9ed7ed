"""``fleetpipe dev cluster up | down | status``."""

from __future__ import annotations

from typing import TYPE_CHECKING

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
