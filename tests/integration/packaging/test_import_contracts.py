"""The import contracts of `make lint` hold on the tree and catch a back-edge added to it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
SOURCE_ROOTS = ("services", "operator", "loadtest", "dev")


def _copy_tree(dest: Path) -> None:
    for folder in SOURCE_ROOTS:
        shutil.copytree(
            ROOT / folder,
            dest / folder,
            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"),
        )
    shutil.copy(ROOT / "pyproject.toml", dest / "pyproject.toml")


def _lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    # The copy comes first on the path, ahead of the editable installs of the real tree.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(tree / f) for f in SOURCE_ROOTS)}
    return subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_tree_keeps_every_import_contract(tmp_path: Path) -> None:
    _copy_tree(tmp_path)
    result = _lint_imports(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout, result.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        pytest.param(
            "services/fleetpipe/ingest/server.py",
            "import fleetpipe_dev.testing",
            "Runtime code never imports the developer's tools",
            id="a-service-imports-dev-code",
        ),
        pytest.param(
            "services/fleetpipe/ingest/server.py",
            "import fleetpipe.enrichment.enrich",
            "The services are independent of each other",
            id="a-service-imports-another",
        ),
        pytest.param(
            "services/fleetpipe/detection/rules.py",
            "import confluent_kafka",
            "Only fleetpipe.core uses Kafka's client library",
            id="kafka-client-outside-core",
        ),
        pytest.param(
            "services/fleetpipe/core/codecs.py",
            "import fleetpipe.detection.rules",
            "Layers",
            id="core-imports-a-service",
        ),
    ],
)
def test_an_added_back_edge_breaks_its_contract(
    tmp_path: Path, module: str, line: str, broken: str
) -> None:
    _copy_tree(tmp_path)
    target = tmp_path / module
    target.write_text(target.read_text() + f"\n{line}  # noqa: E402, F401\n")

    result = _lint_imports(tmp_path)

    assert result.returncode != 0, result.stdout
    broken_lines = [ln for ln in result.stdout.splitlines() if ln.endswith("BROKEN")]
    assert any(ln.startswith(broken) for ln in broken_lines), result.stdout
