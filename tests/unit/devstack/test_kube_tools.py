"""The control plane's binaries: a missing one is named, with the command that builds it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fleetpipe_dev.stack.kube import KUBE_TOOLS, find_tools
from fleetpipe_dev.stack.procs import StartError

pytestmark = pytest.mark.unit


def test_missing_binaries_are_named_with_the_build_command(tmp_path: Path) -> None:
    (tmp_path / "kubectl").write_text("#!/bin/sh\n")
    os.chmod(tmp_path / "kubectl", 0o755)
    with pytest.raises(StartError) as caught:
        find_tools(tmp_path)
    message = str(caught.value)
    assert "scripts/build-go-tools.sh" in message
    assert "kube-apiserver" in message and "kwok" in message
    assert "kubectl," not in message  # present, so not reported


def test_all_binaries_present_are_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in KUBE_TOOLS:
        (tmp_path / name).write_text("#!/bin/sh\n")
        os.chmod(tmp_path / name, 0o755)
    monkeypatch.setenv("FLEETPIPE_ETCD", "/bin/true")
    tools = find_tools(tmp_path)
    assert set(tools) == {*KUBE_TOOLS, "etcd"}
