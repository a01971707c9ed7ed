"""The node's configuration files, rendered from :class:`ClusterSettings` (no I/O here)."""

from __future__ import annotations

import json
from pathlib import Path

from fleetpipe_dev.cluster.settings import ClusterSettings

# The pod sandbox image `make image` builds; containerd never pulls it.
SANDBOX_IMAGE = "docker.io/fleetpipe-local/pause:3.10"


def containerd_toml(settings: ClusterSettings) -> str:
    home = settings.home / "containerd"
    return f"""version = 2
root = "{home / "root"}"
state = "{home / "state"}"
[grpc]
  address = "{home / "containerd.sock"}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{SANDBOX_IMAGE}"
  disable_apparmor = true
  # A root without CAP_SYS_RESOURCE cannot lower an OOM score; containerd then keeps it.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{settings.home / "cni" / "net.d"}"
"""


def cni_conflist(settings: ClusterSettings) -> str:
    """The pods' network: one bridge whose gateway is the node, addresses from host-local."""
    return json.dumps(
        {
            "cniVersion": "0.4.0",
            "name": "fleetpipe",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": settings.bridge,
                    "isGateway": True,
                    "ipMasq": False,
                    # A pod reaching itself through a Service comes back over the bridge.
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "dataDir": str(settings.home / "cni" / "state"),
                        "ranges": [[{"subnet": settings.pod_cidr}]],
                        "routes": [{"dst": "0.0.0.0/0"}],
                    },
                },
                {"type": "portmap", "capabilities": {"portMappings": True}},
                {"type": "loopback"},
            ],
        },
        indent=2,
    )


def kubelet_config(settings: ClusterSettings) -> str:
    socket = settings.home / "containerd" / "containerd.sock"
    config = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        # 0.0.0.0 inside the cluster's namespace: the node address and loopback only.
        "address": "0.0.0.0",  # noqa: S104
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "containerRuntimeEndpoint": f"unix://{socket}",
        "cgroupDriver": "cgroupfs",
        # Hosts with cgroup v1 only: the kubelet refuses them by default since 1.35.
        "failCgroupV1": False,
        "failSwapOn": False,
        "clusterDNS": [settings.dns_ip],
        "clusterDomain": settings.cluster_domain,
        "authentication": {"anonymous": {"enabled": True}, "webhook": {"enabled": False}},
        "authorization": {"mode": "AlwaysAllow"},
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "2%",
            "imagefs.available": "2%",
            "nodefs.inodesFree": "2%",
        },
        # The imported images cannot be pulled again: never collect them.
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "serializeImagePulls": False,
        # Not the host's /var/log/pods: the cluster keeps everything under its home.
        "podLogsDir": str(settings.home / "pod-logs"),
        "maxPods": 110,
    }
    return json.dumps(config, indent=2)


def corefile(settings: ClusterSettings, kubeconfig: Path, *, dns_ready_port: int = 18181) -> str:
    """CoreDNS answers the cluster's names from the API and forwards the rest to the host's
    resolver, as the CoreDNS of kind and kubeadm does."""
    return f""".:53 {{
    bind {settings.dns_ip}
    errors
    health 127.0.0.1:18080
    ready 127.0.0.1:{dns_ready_port}
    kubernetes {settings.cluster_domain} in-addr.arpa ip6.arpa {{
        kubeconfig {kubeconfig}
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }}
    forward . {settings.upstream_resolv_conf}
    cache 30
    loop
    loadbalance
}}
"""
