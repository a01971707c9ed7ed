"""skaffold against the local cluster: ``fleetpipe dev cluster skaffold ARGS`` and the image
loader its ``fleetpipe-cluster`` profile calls (``fleetpipe dev cluster load``).

The cluster has no registry and skaffold has no loader for it (it has one for kind), so the
profile builds with ``push: false`` and an after-build hook imports the image into the cluster's
containerd, as ``kind load`` does for kind. skaffold runs with:

- the private Docker engine of ``make image`` (``DOCKER_HOST``), which holds the Debian-made
  Python base the profile builds on and every layer of earlier builds;
- the cluster's kubeconfig, inside the cluster's network namespace (the API server listens
  only there);
- helm v3 first on its ``PATH`` as ``helm``: skaffold v2.16 hands itself to helm as
  ``--post-renderer PATH``, which helm v4 only accepts as a plugin name.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from fleetpipe_dev.cluster.node import LocalCluster
from fleetpipe_dev.devtools.manifests import REPO
from fleetpipe_dev.image.build import ImageBuilder
from fleetpipe_dev.image.dockerd import PrivateDockerd
from fleetpipe_dev.image.settings import ImageSettings
from fleetpipe_dev.stack.kube import bin_dir
from fleetpipe_dev.stack.procs import StartError

Say = Callable[[str], None]

PROFILE = "fleetpipe-cluster"
# The profile's release namespace, as skaffold.yaml names it.
SKAFFOLD_NAMESPACE = "fleetpipe-system"


def tool(name: str) -> Path:
    path = bin_dir() / name
    if not path.is_file():
        raise StartError(f"{path} is missing: build it (once, cached) with "
                         f"`scripts/build-go-tools.sh {name}`")  # fmt: skip
    return path


def helm3_path(cluster: LocalCluster) -> Path:
    """A folder holding only ``helm`` → the cached helm v3, to put first on skaffold's PATH."""
    folder = cluster.home / "skaffold-path"
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / "helm"
    target = tool("helm3")
    if not link.is_symlink() or link.readlink() != target:
        link.unlink(missing_ok=True)
        link.symlink_to(target)
    return folder


def skaffold_env(cluster: LocalCluster, dockerd: PrivateDockerd) -> dict[str, str]:
    env = dockerd.env()
    # The hook's `fleetpipe` (this interpreter's), then helm v3, then the cached binaries.
    path = [str(Path(sys.executable).parent), str(helm3_path(cluster)), str(bin_dir())]
    env["PATH"] = os.pathsep.join([*path, env.get("PATH", "")])
    env["KUBECONFIG"] = str(cluster.kubeconfig)
    # The hook's `fleetpipe dev cluster load` finds this cluster through these.
    env["FLEETPIPE_CLUSTER_HOME"] = str(cluster.settings.home)
    env["FLEETPIPE_CLUSTER_NETNS"] = cluster.settings.netns
    # No update check or survey prompt: there is nobody to answer, and no network to ask.
    env["SKAFFOLD_UPDATE_CHECK"] = "false"
    env["SKAFFOLD_INTERACTIVE"] = "false"
    return env


def run_skaffold(
    cluster: LocalCluster,
    args: Sequence[str],
    *,
    images: ImageSettings | None = None,
    timeout: float = 1200.0,
    say: Say = print,
) -> int:
    """``skaffold ARGS`` from the repository, with the private Docker engine running (started
    for it, stopped after) and the profile's Python base built (cached)."""
    images = images or ImageSettings()
    skaffold = tool("skaffold")
    dockerd = PrivateDockerd(images.home)
    with dockerd.running(say=say):
        builder = ImageBuilder(images, REPO, say=say)
        builder.env = dockerd.env()
        builder.debian_base()
        builder.python_base()
        cmd = cluster.ns(str(skaffold), *args)
        say(f"skaffold {' '.join(args)}")
        result = subprocess.run(
            cmd, cwd=REPO, env=skaffold_env(cluster, dockerd), timeout=timeout, check=False
        )
        return result.returncode


def image_tags(image: str, *, env: dict[str, str] | None = None) -> list[str]:
    """Every tag of the image ``image`` names, in the Docker engine ``env`` names (skaffold tags
    its build twice: with its tag policy's tag and with the image id it deploys)."""
    out = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{json .RepoTags}}", image],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise StartError(f"docker image inspect {image} failed: {out.stderr.strip()}")
    tags: list[str] = json.loads(out.stdout) or []
    return tags


def load_image(cluster: LocalCluster, image: str, *, say: Say = print) -> list[str]:
    """``docker save`` of the image under every tag it has, imported into the cluster's
    containerd (the namespace kubelet uses). Returns the tags loaded."""
    tags = image_tags(image)
    if not tags:
        raise StartError(f"{image} has no tag to load")
    archive = cluster.home / "load" / "image.tar"
    archive.parent.mkdir(parents=True, exist_ok=True)
    try:
        saved = subprocess.run(
            ["docker", "save", "-o", str(archive), *tags],
            capture_output=True,
            text=True,
            check=False,
        )
        if saved.returncode != 0:
            raise StartError(f"docker save {' '.join(tags)} failed: {saved.stderr.strip()}")
        cluster.ctr("images", "import", str(archive), timeout=600)
    finally:
        archive.unlink(missing_ok=True)
    say(f"loaded into the cluster's containerd: {', '.join(tags)}")
    return tags
