"""The uninstall hook's wait: pipelines deleted, gone when the API says so, stuck ones named."""

from __future__ import annotations

from typing import Any

import pytest

from fleet_operator.uninstall import PipelinesStuck, remove_pipelines

pytestmark = pytest.mark.unit


class FakePipelines:
    """Pipelines that go ``reads_left`` reads after their deletion, or never (None)."""

    def __init__(self, pipelines: dict[str, int | None], finalizers: tuple[str, ...] = ()) -> None:
        self.reads_left = dict(pipelines)
        self.finalizers = finalizers
        self.deleted: list[str] = []

    def delete(self, namespace: str, name: str) -> bool:
        if name not in self.reads_left:
            return False
        self.deleted.append(name)
        return True

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        if name not in self.reads_left:
            return None
        left = self.reads_left[name]
        if left is not None:
            if left == 0:
                del self.reads_left[name]
                return None
            self.reads_left[name] = left - 1
        meta: dict[str, Any] = {"name": name, "finalizers": list(self.finalizers)}
        if name in self.deleted:
            meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
        return {"metadata": meta}


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_every_pipeline_is_deleted_and_the_wait_ends_when_the_last_is_gone() -> None:
    api = FakePipelines({"fleet": 2, "other": 4})
    clock, said = FakeClock(), list[str]()
    took = remove_pipelines(
        api,
        "fp",
        ["fleet", "other"],
        timeout_s=60,
        interval_s=2,
        say=said.append,
        clock=clock,
        sleep=clock.sleep,
    )
    assert api.deleted == ["fleet", "other"]
    assert took == 8.0
    assert said[-1] == "every FleetPipeline of the release gone after 8.0 s"


def test_a_pipeline_already_gone_is_no_error() -> None:
    clock, said = FakeClock(), list[str]()
    took = remove_pipelines(
        FakePipelines({}), "fp", ["fleet"], timeout_s=60, interval_s=2,
        say=said.append, clock=clock, sleep=clock.sleep,
    )  # fmt: skip
    assert took == 0.0
    assert said[0] == "fp/fleet: not there"


def test_a_pipeline_held_past_the_deadline_fails_naming_its_finalizer() -> None:
    api = FakePipelines({"fleet": None}, finalizers=("fleetpipe.io/finalizer",))
    clock = FakeClock()
    with pytest.raises(PipelinesStuck, match=r"fleet: held by fleetpipe\.io/finalizer") as info:
        remove_pipelines(
            api, "fp", ["fleet"], timeout_s=30, interval_s=2,
            say=lambda _: None, clock=clock, sleep=clock.sleep,
        )  # fmt: skip
    assert "after 30 s" in str(info.value)
    assert "Is the operator running?" in str(info.value)
    assert clock.now == 30.0
