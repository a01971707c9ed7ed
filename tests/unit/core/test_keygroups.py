"""Vehicle → key group → partition, and what growing the partitions moves."""

from __future__ import annotations

import itertools

import pytest

from fleetpipe.core.errors import ConfigError
from fleetpipe.core.keygroups import DEFAULT_KEY_GROUPS, KeyGroups, TooManyPartitions
from fleetpipe.core.partitioner import partition_for

VEHICLES = [f"veh-{i:06d}" for i in range(20_000)]


def test_a_vehicles_group_is_kafkas_murmur2_modulo_the_group_count() -> None:
    groups = KeyGroups()
    assert groups.count == DEFAULT_KEY_GROUPS == 4096
    assert groups.group("21") == (-973932308 & 0x7FFFFFFF) % 4096
    assert all(groups.group(v) == partition_for(v, 4096) for v in VEHICLES[:500])
    assert groups.group(b"veh-000001") == groups.group("veh-000001")


@pytest.mark.parametrize("partitions", [1, 3, 6, 50, 100, 4096])
def test_partitions_hold_contiguous_ranges_of_groups_covering_all(partitions: int) -> None:
    groups = KeyGroups()
    ranges = [groups.groups_of(p, partitions) for p in range(partitions)]
    assert ranges[0].start == 0 and ranges[-1].stop == 4096
    assert all(a.stop == b.start for a, b in itertools.pairwise(ranges))
    assert all(len(r) >= 4096 // partitions for r in ranges), "no partition goes without"
    for p, held in enumerate(ranges):
        assert {groups.partition_of_group(g, partitions) for g in held} == {p}


def test_a_vehicle_lands_on_the_partition_holding_its_group() -> None:
    groups = KeyGroups()
    for v in VEHICLES[:2000]:
        p = groups.partition(v, 50)
        assert groups.group(v) in groups.groups_of(p, 50)


def test_growing_50_to_100_moves_whole_groups_each_old_partition_splitting_in_two() -> None:
    groups = KeyGroups()
    moved_groups: dict[int, set[int]] = {}
    for g in range(groups.count):
        old, new = groups.partition_of_group(g, 50), groups.partition_of_group(g, 100)
        assert new in (2 * old, 2 * old + 1), f"group {g}: {old} -> {new}"
        moved_groups.setdefault(new, set()).add(g)
    # Each new partition's groups came from one old partition, as one contiguous run.
    for new, held in moved_groups.items():
        assert held == set(groups.groups_of(new, 100))
        assert {groups.partition_of_group(g, 50) for g in held} == {new // 2}
    # Vehicles follow their group: every vehicle of a group ends on the same new partition.
    by_group: dict[int, set[int]] = {}
    for v in VEHICLES:
        by_group.setdefault(groups.group(v), set()).add(groups.partition(v, 100))
    assert all(len(parts) == 1 for parts in by_group.values())


def test_vehicles_spread_evenly_over_partitions() -> None:
    groups = KeyGroups()
    counts = [0] * 50
    for v in VEHICLES:
        counts[groups.partition(v, 50)] += 1
    assert min(counts) > 0.7 * len(VEHICLES) / 50
    assert max(counts) < 1.3 * len(VEHICLES) / 50


@pytest.mark.parametrize(
    ("partitions", "groups"),
    [pytest.param(4097, 4096, id="one-more-than-groups"), pytest.param(9, 8, id="small")],
)
def test_more_partitions_than_groups_are_refused_with_the_setting_named(
    partitions: int, groups: int
) -> None:
    mapping = KeyGroups(groups)
    with pytest.raises(TooManyPartitions, match="FLEET_KAFKA__KEY_GROUPS") as caught:
        mapping.partition("v-1", partitions)
    assert (caught.value.partitions, caught.value.groups) == (partitions, groups)
    with pytest.raises(TooManyPartitions):
        mapping.check(partitions)
    mapping.check(groups)  # as many partitions as groups: one group each


def test_nonsense_counts_are_refused() -> None:
    with pytest.raises(ConfigError):
        KeyGroups(0)
    with pytest.raises(ConfigError):
        KeyGroups().partition("v-1", 0)
    with pytest.raises(ValueError, match="not one of"):
        KeyGroups().groups_of(5, 5)
