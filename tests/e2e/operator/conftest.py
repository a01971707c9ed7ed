"""The operator's world: a real control plane with kwok nodes, the CRD, and the operator running.

Only tests in this folder ask for these fixtures, so unit and integration runs never start
Kubernetes. The control plane is the session's ``kube`` (tests/e2e/conftest.py). The operator
runs as ``python -m fleet_operator`` — the way its pod runs it — with a ServiceAccount token bound
to nothing but ``k8s/rbac/operator.yaml``, so every test also proves that the least-privilege
rules are enough.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from fleet_operator.spec import parse_spec
from fleetpipe.core.settings import Topics
from fleetpipe_dev.testing import wait_for
from support.security import SaslLogin
from support.servers import BrokerHandle

ROOT = Path(__file__).resolve().parents[3]
CRD = ROOT / "k8s" / "crds" / "fleetpipelines.yaml"
RBAC = ROOT / "k8s" / "rbac" / "operator.yaml"
TIMER_INTERVAL_S = 3


@pytest.fixture(scope="session")
def crd(kube: Any) -> str:
    kube.run("apply", "-f", str(CRD))
    name = "fleetpipelines.fleetpipe.io"

    def established() -> bool:
        # Polled rather than `kubectl wait`, which errors out while the CRD has no conditions.
        conditions = kube.json("get", "crd", name).get("status", {}).get("conditions") or []
        return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)

    wait_for(established, timeout=60, what=f"CRD {name} established")
    return name


@pytest.fixture(scope="session")
def operator(kube: Any, crd: str, workdir: Path, run_operator: Callable[..., Any]) -> Iterator[Any]:
    kube.run("create", "namespace", "fleetpipe-system", check=False)
    kube.run("apply", "-f", str(RBAC))
    with run_operator(
        kube,
        service_account="fleetpipe-operator",
        namespace="fleetpipe-system",
        home=workdir / "operator",
        timer_interval_s=TIMER_INTERVAL_S,
    ) as handle:
        yield handle


@pytest.fixture
def namespace(kube: Any, crd: str) -> Iterator[str]:
    """A namespace of its own, with the Secrets the samples name."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    kube.create_sample_namespace(name)
    yield name
    kube.run("delete", "namespace", name, "--wait=false", check=False)


@dataclass
class Pipeline:
    namespace: str
    name: str
    suffix: str

    @property
    def topics(self) -> Topics:
        return Topics.with_suffix(self.suffix)


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = (
            _merge(out[key], value)
            if isinstance(value, dict) and isinstance(out.get(key), dict)
            else value
        )
    return out


@pytest.fixture
def make_pipeline(
    kube: Any, kafka: Any, namespace: str, sample_text: Callable[..., str]
) -> Callable[..., Pipeline]:
    """Apply a sample (optionally changed) in the test's namespace, with unique topics."""

    def make(sample: str = "fleetpipeline-50k.yaml", **spec: Any) -> Pipeline:
        # A letter first: an all-digit (or 1e5-like) suffix would be a YAML number.
        suffix = f"t{uuid.uuid4().hex[:10]}"
        text = sample_text(sample, bootstrap=kafka.bootstrap, suffix=suffix)
        if spec:
            doc = yaml.safe_load(text)
            doc["spec"] = _merge(doc["spec"], spec)
            parse_spec(doc["spec"])  # a typo in a test should fail here, clearly
            text = yaml.safe_dump(doc)
        kube.run("apply", "-n", namespace, "-f", "-", stdin=text)
        name = yaml.safe_load(text)["metadata"]["name"]
        return Pipeline(namespace, name, suffix)

    return make


# ---- the operator's login on the session broker's SASL_SSL listener ----------------------
@pytest.fixture
def sasl_login(kube: Any, namespace: str, kafka: BrokerHandle) -> SaslLogin:
    """The operator's login (User:operator) and the CA Secret, made in the test's namespace."""
    security = kafka.security
    login = SaslLogin(kube, namespace, security.bootstrap)
    login.set_login("operator", security.passwords()["operator"])
    kube.run(
        "create", "secret", "generic", SaslLogin.CA_SECRET, "-n", namespace,
        f"--from-file=ca.crt={security.ca_file}",
    )  # fmt: skip
    return login
