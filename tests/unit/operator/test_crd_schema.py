"""The CRD's ``spec.rules`` schema is the model detection parses, and it closes every object."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from fleetpipe_dev.devtools import crdschema

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]


def _spec_properties() -> dict[str, Any]:
    doc = yaml.safe_load(crdschema.CRD.read_text())
    schema = doc["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    properties: dict[str, Any] = schema["properties"]["spec"]["properties"]
    return properties


def test_the_generated_blocks_match_the_models() -> None:
    text = crdschema.CRD.read_text()
    assert crdschema.render(text) == text, "the CRD drifted from the models: make crd-schema"


def _objects(node: Any, path: str) -> list[tuple[str, dict[str, Any]]]:
    if not isinstance(node, dict):
        return []
    found = [(path, node)] if node.get("type") == "object" else []
    for name, child in (node.get("properties") or {}).items():
        found += _objects(child, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        found += _objects(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        found += _objects(node["additionalProperties"], f"{path}.*")
    return found


@pytest.mark.parametrize("block", [b.field for b in crdschema.BLOCKS])
def test_every_object_of_a_generated_block_is_closed(block: str) -> None:
    # An object that lists its properties has an unknown key refused (strict field validation)
    # instead of kept: nothing may preserve unknown fields.
    objects = _objects(_spec_properties()[block], f"spec.{block}")
    assert objects
    for path, node in objects:
        assert "x-kubernetes-preserve-unknown-fields" not in node, path
        assert "properties" in node or "additionalProperties" in node, path


def test_a_tuple_becomes_a_fixed_length_list_and_an_optional_a_nullable() -> None:
    rules = _spec_properties()["rules"]["properties"]
    polygon = rules["geofence"]["properties"]["fences"]["items"]["properties"]["polygon"]
    assert polygon["items"] == {
        "type": "array",
        "items": {"type": "number"},
        "minItems": 2,
        "maxItems": 2,
    }
    tier = rules["speeding"]["properties"]["tiers"]["items"]["properties"]["above_kmh"]
    assert tier["nullable"] is True and tier["exclusiveMinimum"] is True and tier["minimum"] == 0
