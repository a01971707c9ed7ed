"""A real one-node cluster for the tests of this folder: the images built (``make image``'s
code, cached by content), ``fleetpipe dev cluster``'s node up in a network namespace of its own,
and everything it made removed afterwards.

The cluster lives under its own home and namespace (``cluster-test``, ``fleetpipe-test``) so a
developer's ``fleetpipe dev cluster`` is not reused or overwritten. Cold, the session spends
some minutes building images; warm (images and the containerd store cached), about a minute.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

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
