"""A real one-node cluster for the tests of this folder: the images built (``make image``'s
code, cached by content), ``fleetpipe dev cluster``'s node up in a network namespace of its own,
the chart installed by ``fleetpipe dev cluster install`` itself with its default FleetPipeline,
and everything it made removed afterwards.

The cluster lives under its own home and namespace (``cluster-test``, ``fleetpipe-test``) so a
developer's ``fleetpipe dev cluster`` is not reused or overwritten. Cold, the session spends
some minutes building images; warm (images and the containerd store cached), about a minute.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleetpipe_dev.cluster.install import Installation, release_twilio
from fleetpipe_dev.cluster.node import LocalCluster
from fleetpipe_dev.cluster.settings import ClusterSettings
from fleetpipe_dev.devtools.manifests import REPO
from fleetpipe_dev.image.build import build_images
from fleetpipe_dev.image.settings import ImageSettings
from fleetpipe_dev.stack.kafka import default_cache


@pytest.fixture(scope="session")
def local_cluster() -> Iterator[LocalCluster]:
    start = time.monotonic()
    archives = build_images(ImageSettings(), REPO)
    print(f"images ready in {time.monotonic() - start:.0f}s")
    settings = ClusterSettings(home=default_cache() / "cluster-test", netns="fleetpipe-test")
    cluster = LocalCluster(settings)
    start = time.monotonic()
    cluster.up(archives)
    print(f"cluster up in {time.monotonic() - start:.0f}s")
    try:
        yield cluster
    finally:
        cluster.down()
        left = cluster.leftovers()
        assert not any(left.values()), f"cluster down left {left}"


@pytest.fixture(scope="session")
def installed(local_cluster: LocalCluster) -> Installation:
    """``fleetpipe dev cluster install`` itself, on this cluster (already up, images built):
    the Twilio stand-in, Secrets, registry, ``helm install`` and the wait until the
    FleetPipeline and its services' pods are Ready."""
    settings = local_cluster.settings
    env = {
        **os.environ,
        "FLEETPIPE_CLUSTER_HOME": str(settings.home),
        "FLEETPIPE_CLUSTER_NETNS": settings.netns,
    }
    command = [str(Path(sys.executable).with_name("fleetpipe")), "dev", "cluster", "install"]
    start = time.monotonic()
    result = subprocess.run(
        [*command, "--no-build"], env=env, capture_output=True, text=True, timeout=1200, check=False
    )
    ready_s = time.monotonic() - start
    print(result.stdout, result.stderr)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ready" in result.stdout
    print(f"fleetpipe dev cluster install: Ready with every pod in {ready_s:.0f}s")
    return Installation(release_twilio(local_cluster), ready_s)
