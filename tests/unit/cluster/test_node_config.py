"""The local cluster's configuration files, rendered from its settings."""

from __future__ import annotations

import json
import socket
import tomllib
from pathlib import Path

import pytest

from fleetpipe_dev.cluster.config import (
    SANDBOX_IMAGE,
    cni_conflist,
    containerd_toml,
    corefile,
    kubelet_config,
)
from fleetpipe_dev.cluster.settings import ClusterSettings
from fleetpipe_dev.image.build import PAUSE_IMAGE
from fleetpipe_dev.image.settings import BaseSource, ImageSettings, registry_reachable

pytestmark = pytest.mark.unit


@pytest.fixture
def settings(tmp_path: Path) -> ClusterSettings:
    return ClusterSettings(home=tmp_path / "cluster", node_ip="10.77.0.1", pod_cidr="10.77.0.0/24")


def test_containerd_uses_the_pause_image_make_image_builds_and_its_own_folders(
    settings: ClusterSettings,
) -> None:
    config = tomllib.loads(containerd_toml(settings))
    cri = config["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["sandbox_image"] == SANDBOX_IMAGE == f"docker.io/{PAUSE_IMAGE}"
    assert cri["restrict_oom_score_adj"] is True
    assert config["grpc"]["address"] == str(settings.home / "containerd" / "containerd.sock")
    assert cri["cni"]["conf_dir"] == str(settings.home / "cni" / "net.d")


def test_pods_get_addresses_on_the_bridge_whose_gateway_is_the_node(
    settings: ClusterSettings,
) -> None:
    bridge = json.loads(cni_conflist(settings))["plugins"][0]
    assert bridge["type"] == "bridge"
    assert bridge["bridge"] == settings.bridge
    assert bridge["ipam"]["ranges"] == [[{"subnet": "10.77.0.0/24"}]]


def test_pods_resolve_names_through_coredns_on_the_node_address(
    settings: ClusterSettings, tmp_path: Path
) -> None:
    kubelet = json.loads(kubelet_config(settings))
    assert kubelet["clusterDNS"] == ["10.77.0.1"]
    assert kubelet["clusterDomain"] == "cluster.local"
    dns = corefile(settings, tmp_path / "kubeconfig")
    assert "bind 10.77.0.1" in dns
    assert f"kubeconfig {tmp_path / 'kubeconfig'}" in dns
    assert "kubernetes cluster.local" in dns


def test_a_closed_port_means_no_registry_and_a_listening_one_means_one() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        port = server.getsockname()[1]
        assert not registry_reachable(f"127.0.0.1:{port}", timeout=1)
        server.listen()
        assert registry_reachable(f"127.0.0.1:{port}", timeout=1)


@pytest.mark.parametrize(
    ("setting", "listening", "expected"),
    [
        pytest.param("local", True, BaseSource.LOCAL, id="local-even-with-a-registry"),
        pytest.param("registry", False, BaseSource.REGISTRY, id="registry-as-told"),
        pytest.param("auto", True, BaseSource.REGISTRY, id="auto-registry-answers"),
        pytest.param("auto", False, BaseSource.LOCAL, id="auto-no-registry"),
    ],
)
def test_the_base_image_source(setting: str, listening: bool, expected: BaseSource) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        if listening:
            server.listen()
        probe = f"127.0.0.1:{server.getsockname()[1]}"
        assert ImageSettings(base=BaseSource(setting), registry_probe=probe).resolved_base() is (
            expected
        )
