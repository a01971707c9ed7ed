"""The CRD's schemas for ``spec.rules``, ``spec.zones`` and ``spec.recipients``, generated from
the models the services parse.

``python -m fleetpipe_dev.devtools.crdschema generate`` rewrites the blocks of
``helm/fleetpipe/crds/fleetpipelines.yaml`` between the ``BEGIN generated`` and
``END generated`` markers from the pydantic models (``check`` fails when they differ; a unit
test runs it). The rest of the CRD stays hand-written.

The API server then refuses what detection would refuse at start: a misspelt key (every object
lists its properties, and strict field validation — kubectl's default — refuses an unknown
one, naming it), a wrong type and a value out of bounds (with the field's path). What a schema
cannot say (a polygon that crosses itself, unique fence names) the operator checks before it
renders, with the same model.

Pydantic writes JSON Schema 2020-12; Kubernetes reads a structural OpenAPI v3.0 subset. The
translation: ``$ref`` inlined; ``anyOf [X, null]`` becomes X with ``nullable``; a numeric
``exclusiveMinimum`` becomes ``minimum`` plus the v3.0 boolean; a tuple's ``prefixItems``
becomes ``items`` of their common type; ``additionalProperties: false`` goes (structural
schemas forbid it; listing properties is what closes an object). Defaults are left out on
purpose: the API server would store them into every object, and the rules file's own defaults
depend on other keys (``profile``).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
import yaml
from pydantic import TypeAdapter

from fleetpipe.core.zones import Zone
from fleetpipe.detection.config import Rules
from fleetpipe.notification.recipients import Recipients

ROOT = Path(__file__).resolve().parents[3]
CRD = ROOT / "helm" / "fleetpipe" / "crds" / "fleetpipelines.yaml"

_DROPPED = {"title", "default", "additionalProperties", "$defs"}


@dataclass(frozen=True)
class Block:
    """A generated property of ``spec``: its name, its model and what it is for."""

    field: str
    model: Any  # a pydantic model, or a type TypeAdapter takes (list[Zone])
    description: str


BLOCKS = (
    Block(
        "rules",
        Rules,
        "Detection rules (thresholds, durations, speed tiers, geofences), rendered into "
        "detection's rules file. Generated from fleetpipe.detection.config.Rules: every key is "
        "optional, and its default and meaning are documented there.",
    ),
    Block(
        "zones",
        list[Zone],
        "Speed zones and geofences on the map, per fleet: polygons of [lat, lon] vertices with a "
        "speed_limit_kmh (enrichment's limit inside them), a geofence (keep_in alerts "
        "geofence_exit, keep_out geofence_entry) or both. Generated from "
        "fleetpipe.core.zones.Zone.",
    ),
    Block(
        "recipients",
        Recipients,
        "Who besides the driver hears of an alert: operations recipients (SMS, WhatsApp or a "
        "call by severity) and webhook sinks (signed JSON), per fleet. Rendered into "
        "notification's FLEET_RECIPIENTS; a sink's signing key only from the Secret it names. "
        "Generated from fleetpipe.notification.recipients.Recipients.",
    ),
)


def openapi(model: Any) -> dict[str, Any]:
    """``model``'s JSON schema as a structural OpenAPI v3.0 schema for a CRD."""
    schema = TypeAdapter(model).json_schema()
    definitions: dict[str, Any] = schema.get("$defs", {})
    return _convert(schema, definitions)


def _convert(node: Mapping[str, Any], definitions: Mapping[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if ref is not None:
        target = definitions[ref.rsplit("/", 1)[1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _convert(merged, definitions)
    any_of = node.get("anyOf")
    if any_of is not None:
        kept = [branch for branch in any_of if branch.get("type") != "null"]
        if len(kept) != 1:
            raise ValueError(f"cannot express anyOf {any_of} in a structural schema")
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        single = _convert({**kept[0], **rest}, definitions)
        if len(kept) != len(any_of):
            single["nullable"] = True
        return single
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED:
            continue
        if key == "properties":
            out["properties"] = {name: _convert(v, definitions) for name, v in value.items()}
        elif key == "items":
            out["items"] = _convert(value, definitions)
        elif key == "prefixItems":
            types = {item.get("type") for item in value}
            if len(types) != 1:
                raise ValueError(f"cannot express a tuple of {types} in a structural schema")
            out["items"] = {"type": types.pop()}
        elif key == "exclusiveMinimum":
            out["minimum"] = value
            out["exclusiveMinimum"] = True
        elif key == "exclusiveMaximum":
            out["maximum"] = value
            out["exclusiveMaximum"] = True
        else:
            out[key] = value
    extra = node.get("additionalProperties")
    if isinstance(extra, Mapping):
        # A mapping of free keys to typed values (zones by geohash, limits by type).
        out["additionalProperties"] = _convert(extra, definitions)
    return out


class _Leaf(dict[str, Any]):
    """A schema without nested schemas: written on one line, as the hand-written part is."""


class _Dumper(yaml.SafeDumper):
    pass


def _leaf(dumper: yaml.SafeDumper, data: _Leaf) -> yaml.Node:
    return dumper.represent_mapping("tag:yaml.org,2002:map", data, flow_style=True)


_Dumper.add_representer(_Leaf, _leaf)


def _compact(node: Any) -> Any:
    if isinstance(node, dict):
        inner = {k: _compact(v) for k, v in node.items()}
        nested = any(isinstance(v, dict) for v in node.values())
        return inner if nested or "description" in node else _Leaf(inner)
    return node


def block_yaml(block: Block, indent: int) -> str:
    schema = {**openapi(block.model), "description": block.description}
    text = yaml.dump(
        {block.field: _compact(schema)},
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        width=10_000,
    )
    pad = " " * indent
    return "".join(pad + line + "\n" for line in text.splitlines())


def _markers(field: str) -> tuple[str, str]:
    return (
        f"# BEGIN generated: spec.{field} (make crd-schema; do not edit by hand)",
        f"# END generated: spec.{field}",
    )


def render(text: str) -> str:
    """The CRD text with every generated block regenerated."""
    lines = text.splitlines(keepends=True)
    for block in BLOCKS:
        begin, end = _markers(block.field)
        starts = [i for i, line in enumerate(lines) if line.strip() == begin]
        ends = [i for i, line in enumerate(lines) if line.strip() == end]
        if len(starts) != 1 or len(ends) != 1 or ends[0] < starts[0]:
            raise ValueError(f"the CRD needs one '{begin}' ... '{end}' pair")
        indent = len(lines[starts[0]]) - len(lines[starts[0]].lstrip())
        body = block_yaml(block, indent).splitlines(keepends=True)
        lines[starts[0] + 1 : ends[0]] = body
    return "".join(lines)


app = typer.Typer(add_completion=False, help=__doc__)


@app.command()
def generate() -> None:
    """Rewrite the generated blocks of the chart's CRD."""
    CRD.write_text(render(CRD.read_text()))
    typer.echo(f"regenerated {', '.join(f'spec.{b.field}' for b in BLOCKS)} in {CRD}")


@app.command()
def check() -> None:
    """Fail when the CRD's generated blocks differ from the models."""
    current = CRD.read_text()
    if render(current) != current:
        typer.echo(f"{CRD} is out of date: run `make crd-schema`", err=True)
        sys.exit(1)
    typer.echo("the CRD's generated schemas match the models")


if __name__ == "__main__":
    app()
