"""The Dockerfile: multi-stage, compilers only in the build stage, a non-root numeric user."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]


def stages() -> list[list[str]]:
    """The instructions of each stage (continuation lines joined, comments dropped)."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    out: list[list[str]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            out.append([])
        if out:
            out[-1].append(line)
    return out


def test_the_image_is_built_in_two_stages_and_runs_without_build_tools() -> None:
    build, final = stages()
    assert any("gcc" in line for line in build)
    assert not any(re.search(r"apt-get|gcc|pip install", line) for line in final), final
    assert "COPY --from=build /opt/fleetpipe /opt/fleetpipe" in final


def test_the_image_runs_as_the_user_the_chart_expects() -> None:
    final = stages()[-1]
    (user,) = [line for line in final if line.startswith("USER ")]
    values = yaml.safe_load((ROOT / "helm" / "fleetpipe" / "values.yaml").read_text())
    pod = values["podSecurityContext"]
    # Numeric, so the kubelet can verify runAsNonRoot without reading /etc/passwd.
    assert user == f"USER {pod['runAsUser']}:{pod['runAsGroup']}"


def test_the_health_check_probes_the_services_health_endpoint() -> None:
    final = stages()[-1]
    assert any(line.startswith("EXPOSE ") and "8080" in line for line in final)
    (check,) = [line for line in final if line.startswith("HEALTHCHECK")]
    assert "127.0.0.1:8080/healthz" in check


def test_only_the_sources_go_into_the_build_context() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in lines  # everything is excluded, then the sources let back in
    allowed = {line[1:] for line in lines if line.startswith("!")}
    assert "services/**" in allowed and not any(a.startswith("tests") for a in allowed)


def test_the_dockerfile_needs_no_registry_but_its_base_image() -> None:
    # A `# syntax=` directive makes the engine pull a Dockerfile frontend image, and the base
    # is a build argument so `make image` can use one it made without a registry.
    text = (ROOT / "Dockerfile").read_text()
    assert not re.search(r"^#\s*syntax\s*=", text, flags=re.MULTILINE | re.IGNORECASE)
    assert "FROM ${PYTHON_IMAGE}" in text
