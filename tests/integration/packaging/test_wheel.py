"""The runtime distribution, as the image installs it, carries no developer tool."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]


def _build_wheel(project: Path, out: Path) -> zipfile.ZipFile:
    # Built from a copy, as the image's build does: setuptools leaves a build/ folder beside
    # the project it builds.
    source = out / "source"
    skip = shutil.ignore_patterns(
        ".*", "build", "*.egg-info", "__pycache__", "tests", "benchmarks", "helm", "k8s", "tools"
    )
    shutil.copytree(project, source, ignore=skip)
    pip = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    subprocess.run([*pip, "-w", str(out), str(source)], check=True, capture_output=True, cwd=out)
    (wheel,) = out.glob("*.whl")
    return zipfile.ZipFile(wheel)


def _packages(wheel: zipfile.ZipFile) -> set[str]:
    return {
        name.rsplit("/", 1)[0].replace("/", ".")
        for name in wheel.namelist()
        if name.endswith("/__init__.py")
    }


def test_the_runtime_wheel_holds_the_services_operator_and_load_test_and_no_dev_code(
    tmp_path: Path,
) -> None:
    wheel = _build_wheel(ROOT, tmp_path)
    packages = _packages(wheel)
    names = wheel.namelist()

    for needed in ("fleetpipe.core", "fleetpipe.ingest", "fleet_operator", "fleetpipe_loadtest"):
        assert needed in packages, sorted(packages)
    dev = sorted(p for p in packages if p.startswith("fleetpipe_dev") or "devstack" in p)
    assert dev == [], dev
    leaked = [
        n
        for n in names
        if n.endswith(("/testing.py", "/drills.py", "twilio_contract.py"))
        or "/devtools/" in n
        or "/bench/" in n
        or "/twilio/" in n
    ]
    assert leaked == [], leaked
    # The developer's commands reach `fleetpipe` through the dev distribution's entry point only.
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "[fleetpipe.cli]" not in wheel.read(entry_points).decode()


def test_the_dev_wheel_registers_its_commands_on_the_fleetpipe_command(tmp_path: Path) -> None:
    wheel = _build_wheel(ROOT / "dev", tmp_path)
    packages = _packages(wheel)

    assert {"fleetpipe_dev", "fleetpipe_dev.stack", "fleetpipe_dev.bench"} <= packages
    assert not any(p.startswith(("fleetpipe.", "fleet_operator")) for p in packages), packages
    entry_points = next(n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt"))
    assert "dev = fleetpipe_dev.cli:register" in wheel.read(entry_points).decode()
