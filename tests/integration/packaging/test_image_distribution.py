"""The distribution the image installs, built the way the Dockerfile's build stage builds it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]


def test_the_distribution_the_image_installs_carries_every_source_file_and_command(
    tmp_path: Path,
) -> None:
    # The image's build stage copies pyproject.toml, README.md and the three source trees, then
    # `pip install .`: build that wheel from the same files (dependencies aside) and look inside.
    # Tests run from the source tree, so a data file left out of the wheel would only break pods.
    context = tmp_path / "context"
    context.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, context / name)
    tracked = subprocess.run(
        ["git", "ls-files", "services", "operator", "loadtest"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for name in tracked:
        (context / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, context / name)
    pip = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    subprocess.run(
        [*pip, "--wheel-dir", str(tmp_path / "dist"), str(context)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    (wheel,) = (tmp_path / "dist").glob("fleetpipe-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        commands = archive.read(entry_points).decode()
    # services/fleetpipe/x.py is fleetpipe/x.py in the wheel (likewise operator/, loadtest/).
    missing = [n for n in tracked if n.split("/", 1)[1] not in names]
    assert len(tracked) > 100 and not missing, missing
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert all(f"{name} = " in commands for name in scripts), commands
