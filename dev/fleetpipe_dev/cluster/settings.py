"""The local cluster's addresses and folders (``FLEETPIPE_CLUSTER_*``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from fleetpipe_dev.stack.kafka import default_cache
from fleetpipe_dev.stack.kube import SERVICE_CIDR


class ClusterSettings(BaseSettings):
    """Everything lives in the network namespace ``netns``: the node's address is the pods'
    bridge gateway, so the API server, the pods and the Services are reachable only there."""

    model_config = SettingsConfigDict(env_prefix="FLEETPIPE_CLUSTER_", frozen=True)

    home: Path = Field(default_factory=lambda: default_cache() / "cluster")
    netns: str = "fleetpipe"
    bridge: str = "fpbr0"
    pod_cidr: str = "10.88.0.0/24"
    node_ip: str = "10.88.0.1"
    service_cidr: str = SERVICE_CIDR
    api_port: int = 6443
    node_name: str = "fleetpipe-node"
    cluster_domain: str = "cluster.local"
    # The host's resolver, for names outside the cluster (CoreDNS forwards to it).
    upstream_resolv_conf: Path = Path("/etc/resolv.conf")

    @property
    def netns_path(self) -> Path:
        return Path("/run/netns") / self.netns

    @property
    def dns_ip(self) -> str:
        """CoreDNS listens on the node's address, which every pod reaches over the bridge."""
        return self.node_ip
