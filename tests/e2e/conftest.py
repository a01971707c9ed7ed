"""What the end-to-end tests of the operator and of the Helm chart share: a real control plane.

A control plane (etcd, kube-apiserver, controller-manager, scheduler and kwok nodes) is started
on free loopback ports under the session's work folder, about 10-20 s on the 2-core machine;
FLEET_TEST_KUBECONFIG uses a running cluster instead. ``kube`` is the session's cluster;
``start_kube`` starts one more for tests that need an empty one (a ``helm install`` that must
create the CRD itself).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from support.kube import Kube, OperatorHandle, running_kube, running_operator, sample_text


@pytest.fixture(scope="session")
def run_operator() -> Callable[..., AbstractContextManager[OperatorHandle]]:
    return running_operator


@pytest.fixture(scope="session")
def start_kube() -> Callable[..., AbstractContextManager[Kube]]:
    return running_kube


@pytest.fixture(scope="session")
def kube(workdir: Path) -> Iterator[Kube]:
    with running_kube(workdir / "kube") as handle:
        yield handle


@pytest.fixture(name="sample_text", scope="session")
def sample_text_fixture() -> Callable[..., str]:
    """``sample_text``, for the test folders below (conftest modules are not importable)."""
    return sample_text
