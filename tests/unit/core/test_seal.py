"""The sibling group that seals a group's offsets partition: its name and its hash."""

from __future__ import annotations

import pytest

from fleetpipe.core.seal import java_hash, sibling_group

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 0),
        ("hello", 99162322),
        ("Aa", 2112),
        ("BB", 2112),
        ("polygenelubricants", -(2**31)),  # Java's Integer.MIN_VALUE
        ("é", 233),
    ],
)
def test_java_hash_is_javas_string_hash(text: str, expected: int) -> None:
    assert java_hash(text) == expected


@pytest.mark.parametrize(
    "group",
    ["fleetpipe-enrichment", "enrich-fleet.telemetry.raw.v1.db8ff40686", "x", "détection"],
)
def test_the_sibling_starts_with_the_group_and_lands_in_its_offsets_partition(group: str) -> None:
    sibling = sibling_group(group)
    assert sibling.startswith(group + ".seal.") and sibling != group
    for partitions in (1, 3, 10, 50, 97):
        assert _offsets_partition(sibling, partitions) == _offsets_partition(group, partitions)
    assert sibling_group(group) == sibling, "the same name every time"


def _offsets_partition(group: str, partitions: int) -> int:
    """Kafka's: Utils.abs(groupId.hashCode()) % offsets.topic.num.partitions."""
    h = java_hash(group)
    return (0 if h == -(2**31) else abs(h)) % partitions
