"""``fleetpipe dev cluster install``: from nothing to a pipeline running in the local cluster.

The steps, each a no-op when already done: the images (``make image``'s code, cached), the
cluster up with the images imported, the Twilio stand-in listening on the node address (the
pods reach it there; Twilio's cloud is out of reach), the namespace and the Secrets the chart
names (generated, or from ``FLEETPIPE_CLUSTER_*``), an empty vehicle registry ConfigMap, then
``helm install`` with the dev Kafka, PostgreSQL and Jaeger and a FleetPipeline sized for two
cores, and the wait until it is Ready with every service's pods Ready, said as it goes.

The e2e tests of the local cluster run this command as their set-up.
"""

from __future__ import annotations

import base64
import json
import secrets
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from fleet_operator.spec import Component
from fleetpipe.registry import Vehicle, write_csv
from fleetpipe_dev.cluster import netns
from fleetpipe_dev.cluster.node import LocalCluster
from fleetpipe_dev.devtools.manifests import CHART, REPO
from fleetpipe_dev.stack.procs import spawn, stop_pid, wait_until

Say = Callable[[str], None]

RELEASE = "fleetpipe"
NAMESPACE = "fleetpipe"
PIPELINE = "fleet"
FLEET = "fleet-1"
LOCAL_VALUES = REPO / "helm" / "local-cluster.values.yaml"
LOAD_JOB = f"{RELEASE}-loadtest"
REGISTRY_CONFIG_MAP = "fleetpipe-vehicles"
REGISTRY_KEY = "vehicles.csv"
# The Secrets' names (their values are generated or come from the environment).
DB_SECRET = "fleetpipe-db"  # noqa: S105
TWILIO_SECRET = "fleetpipe-twilio"  # noqa: S105
TOKENS_SECRET = "fleetpipe-ingest-tokens"  # noqa: S105
LOADTEST_SECRET = "fleetpipe-loadtest"  # noqa: S105
# The process name of the Twilio stand-in in the cluster's state (``down`` stops it).
TWILIO = "twilio"
# Small requests: up to twenty service pods, the dev servers and the load driver share two cores.
SMALL = {"requests": {"cpu": "20m", "memory": "128Mi"}, "limits": {"memory": "1Gi"}}


class InstallSettings(BaseSettings):
    """``FLEETPIPE_CLUSTER_*``: what the Secrets hold when not generated.

    With ``TWILIO_ACCOUNT_SID`` and ``TWILIO_AUTH_TOKEN`` set, notification calls Twilio's
    cloud (where the machine can reach it); without them, the local stand-in.
    """

    model_config = SettingsConfigDict(env_prefix="FLEETPIPE_CLUSTER_", frozen=True, extra="ignore")

    twilio_account_sid: str = ""
    twilio_auth_token: SecretStr = SecretStr("")
    twilio_from: str = "+15550100"
    twilio_port: int = Field(default=18090, ge=1, le=65535)
    # The bearer token of fleet FLEET (and of the chart's load-test Job); empty: a new one.
    ingest_token: SecretStr = SecretStr("")


@dataclass(frozen=True)
class PipelineSize:
    """A FleetPipeline two cores carry: the design's 1,000 vehicles a partition (50K vehicles:
    50 partitions), a scaled-down event rate (0.01 per vehicle per second: 500 events/s), and a
    per-replica capacity scaled the same way, so the replicas still follow the fleet's size
    (2 of each service at 50K, 4 at 100K)."""

    vehicles: int = 50_000
    events_per_vehicle: float = 0.01
    capacity_per_replica: int = 400
    vehicles_per_partition: int = 1000


@dataclass(frozen=True)
class TwilioAccount:
    account_sid: str
    auth_token: str = ""
    sms_from: str = "+15550100"
    # Empty: Twilio's cloud; else the stand-in's URL as the pods reach it.
    api_base_url: str = ""


@dataclass(frozen=True)
class Installation:
    twilio: TwilioAccount
    ready_s: float  # the FleetPipeline Ready and its services' pods Ready after this long


def pipeline_values(size: PipelineSize) -> dict[str, Any]:
    """The chart's values for the FleetPipeline and the load-test Job (see PipelineSize)."""
    services = {
        c.key: {
            "minReplicas": 1,
            "capacityPerReplica": size.capacity_per_replica,
            "resources": SMALL,
        }
        for c in Component
    }
    return {
        "pipeline": {
            "create": True,
            "name": PIPELINE,
            "spec": {
                "fleet": {
                    "vehicles": size.vehicles,
                    "eventsPerVehiclePerSecond": size.events_per_vehicle,
                    "vehiclesPerPartition": size.vehicles_per_partition,
                },
                "kafka": {},
                "services": services,
                "ingest": {"tokensSecret": TOKENS_SECRET},
                "notification": {"twilioSecret": TWILIO_SECRET},
                "storage": {"databaseSecret": DB_SECRET},
                "registry": {"configMapName": REGISTRY_CONFIG_MAP, "key": REGISTRY_KEY},
                # One event in five traced from ingest on: some alerts' traces then cross all
                # five services (the chart points the exporter at its dev Jaeger).
                "tracing": {"samplingRatio": 0.2},
            },
        },
        "loadtest": {
            "fleet": FLEET,
            "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}},
        },
    }


def registry_config_map(vehicles: Iterable[Vehicle]) -> dict[str, Any]:
    """The vehicle registry the pipeline's services read (and follow when it changes)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / REGISTRY_KEY
        write_csv(vehicles, path)
        text = path.read_text()
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": REGISTRY_CONFIG_MAP, "namespace": NAMESPACE},
        "data": {REGISTRY_KEY: text},
    }


def put_registry(cluster: LocalCluster, vehicles: Iterable[Vehicle]) -> None:
    cluster.kubectl_apply(registry_config_map(vehicles))


def _secret(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "stringData": data,
    }


def secrets_list(twilio: TwilioAccount, *, token: str, db_password: str) -> dict[str, Any]:
    host = f"{RELEASE}-postgresql.{NAMESPACE}.svc"
    account = {
        "account_sid": twilio.account_sid,
        "auth_token": twilio.auth_token,
        "sms_from": twilio.sms_from,
    }
    if twilio.api_base_url:
        account["api_base_url"] = twilio.api_base_url
    docs = [
        _secret(
            DB_SECRET,
            {
                "password": db_password,
                "dsn": f"postgresql://fleetpipe:{db_password}@{host}:5432/fleetpipe",
            },
        ),
        _secret(TWILIO_SECRET, account),
        _secret(TOKENS_SECRET, {"tokens.yaml": json.dumps({token: FLEET})}),
        _secret(LOADTEST_SECRET, {"token": token}),
    ]
    return {"apiVersion": "v1", "kind": "List", "items": docs}


class Installer:
    def __init__(
        self, cluster: LocalCluster, settings: InstallSettings, *, say: Say = print
    ) -> None:
        self.cluster = cluster
        self.settings = settings
        self.say = say

    # ---- the Twilio stand-in ---------------------------------------------------------------
    @property
    def twilio_url(self) -> str:
        return f"http://{self.cluster.settings.node_ip}:{self.settings.twilio_port}"

    def twilio_account(self) -> TwilioAccount:
        s = self.settings
        if s.twilio_account_sid and s.twilio_auth_token.get_secret_value():
            return TwilioAccount(
                s.twilio_account_sid, s.twilio_auth_token.get_secret_value(), s.twilio_from
            )
        return TwilioAccount(
            "AC" + secrets.token_hex(16), secrets.token_hex(16), s.twilio_from, self.twilio_url
        )

    def start_twilio(self, account: TwilioAccount) -> None:
        """The stand-in on the node address, inside the cluster's network namespace."""
        cluster = self.cluster
        marker = str(cluster.home)
        running = cluster.state.processes.get(TWILIO)
        if running is not None:
            stop_pid(int(running["pid"]), str(running["marker"]), timeout=10)
        cmd = cluster.ns(
            sys.executable,
            # The cluster's home in the command line: `down` finds the process by it.
            "-X",
            f"pycache_prefix={cluster.home / 'pycache'}",
            "-m",
            "fleetpipe_dev.twilio",
            "--host",
            cluster.settings.node_ip,
            "--port",
            str(self.settings.twilio_port),
        )
        log_file = cluster.log_file(TWILIO)
        # Credentials by environment, never on a command line.
        env = {
            "FLEET_TWILIO__ACCOUNT_SID": account.account_sid,
            "FLEET_TWILIO__AUTH_TOKEN": account.auth_token,
        }
        proc = spawn(cmd, log_file=log_file, env=env)
        cluster.state.processes[TWILIO] = {
            "pid": proc.pid,
            "marker": marker,
            "address": self.twilio_url,
        }
        cluster.state.save()
        probe = cluster.ns(
            "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
            f"{self.twilio_url}/_contract/messages",
        )  # fmt: skip
        wait_until(
            # Unauthenticated, the stand-in answers 401: it is listening.
            lambda: netns.run(probe, check=False, timeout=5).strip() == "401",
            timeout=30,
            what="the Twilio stand-in",
            proc=proc,
            log_file=log_file,
        )

    # ---- the release ----------------------------------------------------------------------
    def installed(self) -> bool:
        found = self.cluster.kubectl(
            "get", "secrets", "-n", NAMESPACE, "-l", f"owner=helm,name={RELEASE}",
            "-o", "name", check=False,
        )  # fmt: skip
        return bool(found.strip())

    def install(self, size: PipelineSize, *, timeout_s: float = 900.0) -> Installation:
        """Secrets, registry, ``helm install`` and the wait until Ready (or only the wait when
        the release is there already)."""
        cluster, say = self.cluster, self.say
        start = time.monotonic()
        if self.installed():
            say(f"release {RELEASE} already installed in {NAMESPACE}: waiting for it")
            twilio = release_twilio(cluster)
        else:
            twilio = self.twilio_account()
            if twilio.api_base_url:
                self.start_twilio(twilio)
                say(f"Twilio stand-in on {twilio.api_base_url}")
            token = self.settings.ingest_token.get_secret_value() or secrets.token_hex(16)
            cluster.kubectl("create", "namespace", NAMESPACE, check=False)
            cluster.kubectl_apply(
                secrets_list(twilio, token=token, db_password=secrets.token_hex(12))
            )
            put_registry(cluster, [])
            say(f"namespace {NAMESPACE}: Secrets {DB_SECRET}, {TWILIO_SECRET}, "
                f"{TOKENS_SECRET}, {LOADTEST_SECRET}; ConfigMap {REGISTRY_CONFIG_MAP}")  # fmt: skip
            values = cluster.home / "install-values.yaml"
            values.write_text(yaml.safe_dump(pipeline_values(size)))
            out = cluster.helm(
                "install", RELEASE, str(CHART), "-n", NAMESPACE,
                "-f", str(LOCAL_VALUES), "-f", str(values),
            )  # fmt: skip
            if "STATUS: deployed" not in out:
                raise RuntimeError(f"helm install did not deploy:\n{out}")
            helm_s = time.monotonic() - start
            say(f"helm install {RELEASE}: deployed ({helm_s:.0f}s)")
        self.wait_ready(timeout_s=timeout_s, start=start)
        return Installation(twilio, time.monotonic() - start)

    def wait_ready(self, *, timeout_s: float, start: float) -> None:
        """Until the FleetPipeline is Ready and every service's pods Running and Ready, saying
        each change of the pipeline's Ready message and of the pods' counts."""
        deadline = start + timeout_s
        last = ""
        while True:
            pipeline = _get(self.cluster, "fleetpipeline", PIPELINE)
            pods = _get(self.cluster, "pods")
            ready, message = _ready(pipeline)
            want = _desired(pipeline)
            counts = _pods_ready(pods.get("items") or [])
            done = (
                ready
                and bool(want)
                and all(counts.get(s, (0, 0)) == (n, n) for s, n in want.items())
            )
            line = f"Ready={'True' if ready else 'False'} {message}; pods ready " + ", ".join(
                f"{s} {r}/{n}" for s, (r, n) in sorted(counts.items())
            )
            if line != last:
                self.say(f"  [{time.monotonic() - start:5.0f}s] {line}")
                last = line
            if done:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"not Ready after {timeout_s:.0f}s: {line}")
            time.sleep(2.0)


def release_twilio(cluster: LocalCluster) -> TwilioAccount:
    """The Twilio account the installed release's notification uses (its Secret)."""
    found = json.loads(
        cluster.kubectl("get", "secret", TWILIO_SECRET, "-n", NAMESPACE, "-o", "json")
    )
    data = {k: base64.b64decode(v).decode() for k, v in (found.get("data") or {}).items()}
    return TwilioAccount(
        data.get("account_sid", ""),
        data.get("auth_token", ""),
        data.get("sms_from", ""),
        data.get("api_base_url", ""),
    )


def _get(cluster: LocalCluster, *args: str) -> dict[str, Any]:
    out = cluster.kubectl("get", "-n", NAMESPACE, *args, "-o", "json", check=False)
    found: dict[str, Any] = json.loads(out) if out.strip() else {}
    return found


def _ready(pipeline: dict[str, Any]) -> tuple[bool, str]:
    status = pipeline.get("status") or {}
    condition: dict[str, Any] = next(
        (c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {}
    )
    current = status.get("observedGeneration") == (pipeline.get("metadata") or {}).get("generation")
    return current and condition.get("status") == "True", str(condition.get("message") or "")


def _desired(pipeline: dict[str, Any]) -> dict[str, int]:
    replicas = (pipeline.get("status") or {}).get("replicas") or {}
    keys = {c.key: c.value for c in Component}
    return {keys[k]: int(v.get("desired", 0)) for k, v in replicas.items() if k in keys}


def _pods_ready(pods: list[dict[str, Any]]) -> dict[str, tuple[int, int]]:
    """Service → (pods Running and Ready, live pods)."""
    counts: dict[str, tuple[int, int]] = {}
    for pod in pods:
        meta = pod["metadata"]
        component = (meta.get("labels") or {}).get("app.kubernetes.io/component", "")
        if meta.get("deletionTimestamp") or not meta["name"].startswith(f"{PIPELINE}-"):
            continue
        if component not in {c.value for c in Component}:
            continue
        status = pod.get("status") or {}
        ok = status.get("phase") == "Running" and any(
            c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions") or []
        )
        ready, total = counts.get(component, (0, 0))
        counts[component] = (ready + ok, total + 1)
    return counts
