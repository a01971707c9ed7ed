"""A stage's producer names each keyed record's partition by key group; counts refresh."""

from __future__ import annotations

import pytest

from fleetpipe.core.errors import KafkaError
from fleetpipe.core.keygroups import KeyGroups, TooManyPartitions
from fleetpipe.core.placement import Placement

pytestmark = pytest.mark.unit


class Counts:
    """The cluster's partition counts as a test sets them; ``down`` plays a broker away."""

    def __init__(self, **counts: int) -> None:
        self.counts = counts
        self.down = False
        self.asked: list[tuple[str, float]] = []

    def __call__(self, topic: str, timeout_s: float) -> int:
        self.asked.append((topic, timeout_s))
        if self.down:
            raise KafkaError("no broker answered")
        return self.counts[topic]


def test_records_go_to_their_key_groups_partition_and_follow_growth_after_the_refresh() -> None:
    now = [0.0]
    counts = Counts(alerts=2)
    placement = Placement(KeyGroups(), counts, refresh_s=30, clock=lambda: now[0])
    groups = KeyGroups()
    place = placement.placer("alerts")
    assert [place(f"v{i}") for i in range(50)] == [groups.partition(f"v{i}", 2) for i in range(50)]
    assert place(None) == -1, "a record without a key is librdkafka's to place"
    counts.counts["alerts"] = 4
    now[0] = 10.0
    assert placement.partitions("alerts") == 2, "not asked again before refresh_s"
    now[0] = 31.0
    place = placement.placer("alerts")
    assert [place(f"v{i}") for i in range(50)] == [groups.partition(f"v{i}", 4) for i in range(50)]
    assert [t for _, t in counts.asked] == [5.0, 0.5], "a refresh waits little"


def test_a_refresh_that_fails_keeps_the_count_and_a_first_read_that_fails_raises() -> None:
    now = [0.0]
    counts = Counts(trips=3)
    placement = Placement(KeyGroups(), counts, refresh_s=30, clock=lambda: now[0])
    assert placement.partitions("trips") == 3
    counts.down = True
    now[0] = 40.0
    assert placement.partitions("trips") == 3
    now[0] = 50.0
    assert placement.partitions("trips") == 3 and len(counts.asked) == 2, "no retry at once"
    with pytest.raises(KafkaError):
        placement.partitions("scores")


def test_unplaced_topics_and_too_many_partitions() -> None:
    placement = Placement(KeyGroups(8), Counts(dl=2, big=9), refresh_s=30, unplaced=("dl",))
    assert placement.placer("dl")("v1") == -1
    with pytest.raises(TooManyPartitions):
        placement.placer("big")
