from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from fleetpipe.enrichment.handler import _output_headers

pytestmark = pytest.mark.unit


def _out(traced: dict[int, Any]) -> Any:
    return SimpleNamespace(traced={i: SimpleNamespace(headers=h) for i, h in traced.items()})


@pytest.mark.parametrize(
    ("traced", "invalid", "expected"),
    [
        pytest.param({2: "c"}, [], {2: "c"}, id="all-valid"),
        pytest.param({0: "a", 2: "c", 3: "d"}, [1], {0: "a", 1: "c", 2: "d"}, id="shift"),
        pytest.param({1: "b", 3: "d"}, [1], {2: "d"}, id="traced-invalid-dropped"),
        pytest.param({4: "e"}, [0, 2], {2: "e"}, id="two-before"),
    ],
)
def test_trace_headers_follow_each_record_to_its_output_position(
    traced: dict[int, str], invalid: list[int], expected: dict[int, str]
) -> None:
    assert _output_headers(_out(traced), [(i, "bad") for i in invalid]) == expected
