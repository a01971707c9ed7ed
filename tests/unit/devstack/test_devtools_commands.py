"""The developer tools' commands, as the Makefile's proto, manifests and skaffold targets run."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from fleetpipe_dev.devtools import manifests, protogen, skaffold

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("command", "says"),
    [
        pytest.param("check-drift", "in sync with protos/", id="check-drift"),
        pytest.param("check-compat", "compatible with the released", id="check-compat"),
    ],
)
def test_protogen_checks_pass_on_the_committed_contracts(command: str, says: str) -> None:
    result = CliRunner().invoke(protogen.app, [command], prog_name=protogen.PROG)
    assert result.exit_code == 0, result.output
    assert says in result.output


@pytest.mark.parametrize(
    ("app", "commands"),
    [
        pytest.param(
            protogen.app, ["generate", "check-drift", "check-compat", "release"], id="protogen"
        ),
        pytest.param(manifests.app, ["generate", "check-drift"], id="manifests"),
        pytest.param(skaffold.app, ["skaffold.yaml", "schema"], id="skaffold"),
    ],
)
def test_help_says_what_each_command_does(app: typer.Typer, commands: list[str]) -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    assert all(command in result.output for command in commands)
