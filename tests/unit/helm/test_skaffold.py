"""skaffold.yaml against skaffold's published schema, and against the chart and the Dockerfile.

Without a Docker engine or cluster (skaffold itself runs in tests/e2e/cluster): the file is
checked the way skaffold's loader starts, against the JSON schema of its apiVersion
(``scripts/build-go-tools.sh skaffold-schema``), with every profile's patches applied as
skaffold applies them.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from fleetpipe_dev.devtools import skaffold

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    (doc,) = skaffold.load_configs()
    return doc


def profile(config: dict[str, Any], name: str) -> dict[str, Any]:
    return next(p for p in config["profiles"] if p["name"] == name)


def release(config: dict[str, Any]) -> dict[str, Any]:
    (only,) = config["deploy"]["helm"]["releases"]
    assert isinstance(only, dict)
    return only


def test_the_schema_is_where_the_setup_puts_it() -> None:
    schema = skaffold.load_schema()
    assert "SkaffoldConfig" in schema["definitions"]


def test_skaffold_yaml_and_each_profile_match_the_published_schema() -> None:
    assert skaffold.errors() == []


def test_the_check_names_a_misspelt_field_and_a_patch_that_does_not_apply(
    config: dict[str, Any], tmp_path: Path
) -> None:
    broken = copy.deepcopy(config)
    release(broken)["chartPth"] = release(broken).pop("chartPath")
    profile(broken, "kind")["patches"].append(
        {"op": "replace", "path": "/deploy/helm/releases/0/setValuez/x", "value": "y"}
    )
    path = tmp_path / "skaffold.yaml"
    path.write_text(yaml.safe_dump(broken))
    problems = skaffold.errors(path)
    assert any("chartPth" in p and p.startswith("doc 0: deploy/helm/releases/0") for p in problems)
    assert any(p.startswith("doc 0 profile kind:") and "setValuez" in p for p in problems)


def test_the_artifact_is_the_dockerfile_and_the_release_is_the_chart(
    config: dict[str, Any],
) -> None:
    (artifact,) = config["build"]["artifacts"]
    assert (ROOT / artifact["context"] / artifact["docker"]["dockerfile"]).is_file()
    chart = release(config)
    assert (ROOT / chart["chartPath"] / "Chart.yaml").is_file()
    assert all((ROOT / f).is_file() for f in chart["valuesFiles"])
    # skaffold fills the chart's image values from the artifact it built.
    name = artifact["image"]
    assert chart["setValueTemplates"] == {
        "image.repository": f"{{{{.IMAGE_REPO_{name}}}}}",
        "image.tag": f"{{{{.IMAGE_TAG_{name}}}}}",
    }


def _has_value(values: dict[str, Any], dotted: str) -> bool:
    node: Any = values
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


@pytest.mark.parametrize("name", ["kind", "managed"])
def test_every_value_a_profile_sets_is_a_value_of_the_chart(
    config: dict[str, Any], name: str
) -> None:
    patched = skaffold.apply_patches(config, profile(config, name).get("patches", []))
    chart = release(patched)
    values = yaml.safe_load((ROOT / chart["chartPath"] / "values.yaml").read_text())
    keys = [*chart.get("setValues", {}), *chart.get("setValueTemplates", {})]
    assert keys and all(_has_value(values, k) for k in keys), keys


def test_kind_loads_local_images_and_runs_the_dev_dependencies(config: dict[str, Any]) -> None:
    kind = profile(config, "kind")
    assert kind["build"]["local"]["push"] is False
    assert kind["activation"] == [{"kubeContext": "kind-.*"}]
    values = release(skaffold.apply_patches(config, kind["patches"]))["setValues"]
    assert values["image.pullPolicy"] == "Never"  # the image is loaded into the nodes
    for dep in ("kafka", "postgresql", "jaeger"):
        assert values[f"dev.{dep}.enabled"] == "true"


def test_a_managed_cluster_pushes_and_pins_the_digest(config: dict[str, Any]) -> None:
    managed = profile(config, "managed")
    assert managed["build"]["local"]["push"] is True
    chart = release(skaffold.apply_patches(config, managed["patches"]))
    assert chart["setValueTemplates"]["image.tag"].endswith("@{{.IMAGE_DIGEST_fleetpipe}}")
    assert chart["setValues"]["image.pullPolicy"] == "Always"


def test_the_local_cluster_profile_builds_on_the_local_base_and_loads_into_containerd(
    config: dict[str, Any],
) -> None:
    from fleetpipe_dev.cluster.skaffold import PROFILE, SKAFFOLD_NAMESPACE
    from fleetpipe_dev.image.build import PYTHON_IMAGE

    local = profile(config, PROFILE)
    assert local["build"]["local"] == {"push": False, "useBuildkit": False}
    patched = skaffold.apply_patches(config, local["patches"])
    (artifact,) = patched["build"]["artifacts"]
    # The base `make image` made from Debian's packages, in the engine skaffold builds with.
    assert artifact["docker"]["buildArgs"] == {"PYTHON_IMAGE": PYTHON_IMAGE}
    assert artifact["hooks"]["after"][0]["command"] == ["fleetpipe", "dev", "cluster", "load"]
    chart = release(patched)
    assert chart["namespace"] == SKAFFOLD_NAMESPACE
    assert chart["setValues"]["image.pullPolicy"] == "Never"  # only what the hook loaded
    assert chart["setValues"]["operator.watchNamespace"] == SKAFFOLD_NAMESPACE
