"""The collector settings a service applies before its loop starts."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from fleetpipe.core.runtime import tune_gc
from fleetpipe.core.settings import RuntimeSettings, ServiceSettings

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def _collector_restored() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


def test_the_threshold_is_applied_and_start_up_frozen() -> None:
    gc.set_threshold(700, 10, 10)
    gc.unfreeze()
    built_at_start = [[i] for i in range(1000)]
    tune_gc(RuntimeSettings(gc_threshold=50_000))
    assert gc.get_threshold() == (50_000, 10, 10)
    assert gc.get_freeze_count() >= len(built_at_start)


def test_zero_leaves_the_collector_as_python_set_it() -> None:
    gc.set_threshold(700, 10, 10)
    gc.unfreeze()
    tune_gc(RuntimeSettings(gc_threshold=0))
    assert gc.get_threshold() == (700, 10, 10)
    assert gc.get_freeze_count() == 0


def test_the_threshold_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ServiceSettings().runtime.gc_threshold == 50_000, "on by default"
    monkeypatch.setenv("FLEET_RUNTIME__GC_THRESHOLD", "0")
    assert ServiceSettings().runtime.gc_threshold == 0
    monkeypatch.setenv("FLEET_RUNTIME__GC_THRESHOLD", "-1")
    with pytest.raises(ValidationError, match="gc_threshold"):
        ServiceSettings()
