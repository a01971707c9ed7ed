"""Render the plain manifests in k8s/ from the Helm chart, and check them for drift.

The chart (helm/fleetpipe) is the one source of the CRD, the operator's RBAC and Deployment, the
development dependencies and the load-test Job; k8s/ holds what ``helm template`` makes of it for
people who apply manifests with kubectl. The drift check renders into memory and compares with
the committed files byte for byte, like the protobuf drift check.

helm is the binary ``scripts/build-go-tools.sh helm`` builds into the cache.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import typer

from fleetpipe_dev.stack.kube import bin_dir

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "helm" / "fleetpipe"
K8S = REPO / "k8s"
CRD_FILE = "fleetpipelines.yaml"
RELEASE = "fleetpipe"
NAMESPACE = "fleetpipe-system"
# Every optional part of the chart switched on (with the in-chart broker for the pipeline).
EVERY_OPTION = (
    "dev.kafka.enabled=true",
    "dev.postgresql.enabled=true",
    "dev.jaeger.enabled=true",
    "dev.mosquitto.enabled=true",
    "pipeline.create=true",
    "loadtest.enabled=true",
    "lakeCompaction.enabled=true",
)


class HelmError(RuntimeError):
    """helm is missing or a helm command failed; the message says which and why."""


@dataclass(frozen=True, slots=True)
class Output:
    """One file under k8s/: the chart's templates ``show_only`` rendered with ``values``."""

    path: str
    show_only: tuple[str, ...]
    what: str
    values: tuple[str, ...] = ()
    namespace: str = NAMESPACE


OUTPUTS = (
    Output(
        "rbac/operator.yaml",
        ("templates/operator-rbac.yaml",),
        "the operator's ServiceAccount, ClusterRole and binding",
    ),
    Output(
        "operator.yaml",
        (
            "templates/operator-deployment.yaml",
            "templates/networkpolicy.yaml",
            "templates/console-networkpolicy.yaml",
        ),
        "the operator's Deployment and the NetworkPolicies",
    ),
    Output(
        "dev-dependencies.yaml",
        (
            "templates/dev/kafka.yaml",
            "templates/dev/postgresql.yaml",
            "templates/dev/jaeger.yaml",
        ),
        "development Kafka (KRaft, one node), PostgreSQL and Jaeger",
        values=("dev.kafka.enabled=true", "dev.postgresql.enabled=true", "dev.jaeger.enabled=true"),
    ),
    Output(
        "dev-mosquitto.yaml",
        ("templates/dev/mosquitto.yaml",),
        "a development MQTT broker (Mosquitto) with per-device accounts from the registry "
        "ConfigMap and the tokens Secret",
        values=("dev.mosquitto.enabled=true",),
    ),
    Output(
        "monitoring.yaml",
        ("templates/monitoring/servicemonitors.yaml", "templates/monitoring/prometheusrule.yaml"),
        "for clusters with the Prometheus operator: a ServiceMonitor per service and the "
        "pipeline's alerting rules",
        values=(
            "monitoring.serviceMonitors.enabled=true",
            "monitoring.prometheusRule.enabled=true",
        ),
    ),
    Output(
        "loadtest-job.yaml",
        ("templates/loadtest-job.yaml",),
        "the load driver (`fleetpipe loadtest run`) as a Job against the pipeline `fleet` in "
        "namespace default, its Kafka at kafka:9092",
        values=("loadtest.enabled=true", "loadtest.kafka=kafka:9092"),
        namespace="default",
    ),
    Output(
        "lake-compaction.yaml",
        ("templates/lake-compaction-cronjob.yaml",),
        "the lake's compaction (`fleetpipe lake compact`) as an hourly CronJob, the lake on the "
        "claim fleetpipe-lake",
        values=("lakeCompaction.enabled=true", "lakeCompaction.volumeClaim=fleetpipe-lake"),
        namespace="default",
    ),
)


def find_helm(directory: Path | None = None) -> Path:
    path = (directory or bin_dir()) / "helm"
    if not os.access(path, os.X_OK):
        raise HelmError(
            f"helm not found at {path}: build it (once, cached) with "
            "`scripts/build-go-tools.sh helm`, or point FLEETPIPE_CACHE at a cache holding bin/"
        )
    return path


def helm(*args: str, timeout: float = 120.0, env: Mapping[str, str] | None = None) -> str:
    """Run the cached helm; its stdout, or a HelmError with its stderr."""
    result = subprocess.run(
        [str(find_helm()), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **env} if env else None,
    )
    if result.returncode != 0:
        raise HelmError(f"helm {' '.join(args)} failed:\n{result.stderr.strip()}")
    return result.stdout


def template_args(output: Output) -> list[str]:
    args = ["template", RELEASE, str(CHART), "--namespace", output.namespace]
    for template in output.show_only:
        args += ["--show-only", template]
    for value in output.values:
        args += ["--set", value]
    return args


def _command_line(output: Output) -> str:
    args = template_args(output)
    args[2] = "helm/fleetpipe"
    return "helm " + " ".join(args)


def render(output: Output) -> str:
    header = (
        "# Generated by `make manifests` from helm/fleetpipe; do not edit (change the chart).\n"
        f"# {output.what[0].upper()}{output.what[1:]}, rendered with\n"
        f"#   {_command_line(output)}\n"
    )
    return header + helm(*template_args(output))


def render_crd() -> str:
    text = (CHART / "crds" / CRD_FILE).read_text()
    header = (
        "# Generated by `make manifests`: a copy of helm/fleetpipe/crds/fleetpipelines.yaml; "
        "do not edit.\n"
    )
    return header + text


def expected() -> dict[Path, str]:
    """Every generated file under k8s/ and its content."""
    files = {K8S / "crds" / CRD_FILE: render_crd()}
    for output in OUTPUTS:
        files[K8S / output.path] = render(output)
    return files


def generate() -> list[Path]:
    written = []
    for path, text in expected().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written


def check_drift() -> list[str]:
    """Paths (relative to the repo) of generated files that differ from a fresh rendering."""
    return sorted(
        str(path.relative_to(REPO))
        for path, text in expected().items()
        if not path.exists() or path.read_text() != text
    )


T = TypeVar("T")
PROG = "python -m fleetpipe_dev.devtools.manifests"
app = typer.Typer(
    help="Render the plain manifests of k8s/ from the Helm chart helm/fleetpipe, or check that "
    "they are in sync with it. Needs the cached helm (`scripts/build-go-tools.sh helm`).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _or_exit(step: Callable[[], T]) -> T:
    """``step()``; a :class:`HelmError` ends the command with its message and exit code 2."""
    try:
        return step()
    except HelmError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc


@app.command("generate")
def generate_command() -> None:
    """Rewrite the generated files of k8s/ (`make manifests`)."""
    for path in _or_exit(generate):
        typer.echo(f"wrote {path.relative_to(REPO)}")


@app.command("check-drift")
def check_drift_command() -> None:
    """Fail when the files of k8s/ differ from a fresh rendering of the chart."""
    drift = _or_exit(check_drift)
    if drift:
        typer.echo("k8s/ differs from the chart (run `make manifests`): " + ", ".join(drift))
        raise typer.Exit(1)
    typer.echo("k8s/ is in sync with helm/fleetpipe")


if __name__ == "__main__":
    app(prog_name=PROG)
