"""What the chart's monitoring is checked against: the Prometheus operator's CRDs and
Prometheus' own PromQL parser, both from their Go modules (``scripts/build-go-tools.sh
prometheus-operator-crds promql-check``), cached outside the repository."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fleetpipe_dev.stack.kafka import default_cache
from fleetpipe_dev.stack.kube import bin_dir

CRDS = ("monitoring.coreos.com_servicemonitors.yaml", "monitoring.coreos.com_prometheusrules.yaml")
BUILD_HINT = "scripts/build-go-tools.sh prometheus-operator-crds promql-check"


def operator_crds() -> list[Path]:
    folder = default_cache() / "crds" / "prometheus-operator"
    paths = [folder / name for name in CRDS]
    missing = [str(p) for p in paths if not p.is_file()]
    # Missing files are a setup error, never a reason to skip: the message names the script.
    assert not missing, f"the Prometheus operator's CRDs are not cached ({missing}): {BUILD_HINT}"
    return paths


@dataclass(frozen=True)
class Parsed:
    code: int
    results: list[dict[str, Any]]
    stderr: str


def parse_promql(expressions: list[str]) -> Parsed:
    """Each expression through Prometheus' parser (``promql-check``)."""
    binary = bin_dir() / "promql-check"
    assert os.access(binary, os.X_OK), f"promql-check not found at {binary}: {BUILD_HINT}"
    run = subprocess.run(
        [str(binary)],
        input=json.dumps(expressions),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    results = json.loads(run.stdout) if run.stdout.strip() else []
    return Parsed(run.returncode, results, run.stderr)
