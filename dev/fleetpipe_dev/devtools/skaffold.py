"""Check skaffold.yaml against skaffold's published JSON schema for its apiVersion.

A quick check that needs no Docker engine or cluster (skaffold itself runs against the local
cluster in tests/e2e/cluster: ``fleetpipe dev cluster skaffold``): the configuration is checked
the way skaffold's own loader starts: against the schema of its ``apiVersion``, which skaffold
publishes in its source (``docs-v2/content/en/schemas/<version>.json``).
``scripts/build-go-tools.sh skaffold-schema`` takes that file from the pinned skaffold release's
Go module into the cache.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from fleetpipe_dev.stack.kafka import default_cache

REPO = Path(__file__).resolve().parents[3]
SKAFFOLD_YAML = REPO / "skaffold.yaml"
# The latest config version of the skaffold release scripts/build-go-tools.sh pins.
API_VERSION = "skaffold/v4beta13"


class SchemaMissing(RuntimeError):
    """The schema or its validator is missing: a setup step was skipped."""


def schema_path(api_version: str = API_VERSION, cache: Path | None = None) -> Path:
    return (cache or default_cache()) / "schemas" / f"{api_version.replace('/', '-')}.json"


def load_schema(api_version: str = API_VERSION) -> dict[str, Any]:
    path = schema_path(api_version)
    if not path.is_file():
        raise SchemaMissing(
            f"skaffold's schema for {api_version} is not at {path}: fetch it (once, cached) with "
            "`scripts/build-go-tools.sh skaffold-schema`"
        )
    schema: dict[str, Any] = json.loads(path.read_text())
    return schema


def load_configs(path: Path = SKAFFOLD_YAML) -> list[dict[str, Any]]:
    """Every document of a skaffold.yaml (skaffold allows several configs in one file)."""
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def apply_patches(config: dict[str, Any], patches: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """``config`` with a profile's JSON patches (RFC 6902) applied, as skaffold applies them
    before it uses a profile; a ValueError names a patch that does not apply."""
    import jsonpatch  # kopf's dependency; services never need it

    try:
        patched: dict[str, Any] = jsonpatch.apply_patch(config, list(patches))
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
        raise ValueError(str(exc)) from None
    return patched


def _schema_errors(validator: Any, config: dict[str, Any], where: str) -> list[str]:
    found = []
    for error in sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path)):
        at = "/".join(str(p) for p in error.absolute_path) or "(top)"
        found.append(f"{where}: {at}: {error.message}")
    return found


def errors(path: Path = SKAFFOLD_YAML) -> list[str]:
    """What the schema says is wrong with each document, and with each document as each of its
    profiles' patches leave it: ``doc N[ profile P]: where: message``."""
    try:
        import jsonschema  # a dev dependency: services never need it
    except ImportError:
        raise SchemaMissing(
            "jsonschema is not installed: it is a dev dependency (scripts/setup.sh installs "
            "'.[dev]' with requirements/constraints.txt)"
        ) from None

    found = []
    for index, config in enumerate(load_configs(path)):
        version = config.get("apiVersion")
        if version != API_VERSION:
            found.append(f"doc {index}: apiVersion {version!r}, expected {API_VERSION!r}")
            continue
        schema = load_schema(version)
        # The published schema is `anyOf: [SkaffoldConfig]`: validating against the one branch
        # names the wrong field instead of "not valid under any of the given schemas".
        branches = schema.get("anyOf") or []
        if len(branches) == 1:
            schema = {**branches[0], "definitions": schema["definitions"]}
        validator = jsonschema.Draft7Validator(schema)
        found += _schema_errors(validator, config, f"doc {index}")
        for profile in config.get("profiles") or []:
            where = f"doc {index} profile {profile.get('name')}"
            try:
                patched = apply_patches(config, profile.get("patches") or [])
            except ValueError as exc:
                found.append(f"{where}: {exc}")
                continue
            found += _schema_errors(validator, patched, where)
    return found


PROG = "python -m fleetpipe_dev.devtools.skaffold"
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
def check(
    path: Annotated[
        Path, typer.Argument(help="the skaffold configuration to check", show_default=False)
    ] = SKAFFOLD_YAML,
) -> None:
    """Check skaffold.yaml and its profiles against skaffold's published schema.

    `make skaffold-check` runs it; the schema comes into the cache, once, with
    `scripts/build-go-tools.sh skaffold-schema`.
    """
    try:
        problems = errors(path)
    except SchemaMissing as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    for problem in problems:
        typer.echo(problem)
    if problems:
        raise typer.Exit(1)
    typer.echo(f"{path.name} is valid {API_VERSION}")


if __name__ == "__main__":
    app(prog_name=PROG)
