"""Tenant isolation as a property: over generated fleets, registries, tokens and batches, an
accepted event is always of a vehicle the token's fleet owns (or an unregistered one, when the
policy accepts those), and every refusal names the vehicle and never another fleet."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetpipe.core.errors import ConfigError
from fleetpipe.ingest.tenancy import Tenancy, UnknownVehicles
from fleetpipe.ingest.validation import VehicleIdCheck, validate_batch
from fleetpipe.pb.v1 import ingest_pb2, telemetry_pb2
from fleetpipe.registry import Vehicle, VehicleRegistry, write_csv

pytestmark = pytest.mark.unit

NOW = 1_800_000_000_000_000
MINUTE = 60_000_000

fleets = st.lists(
    st.from_regex(r"fleet-[a-z]{1,6}", fullmatch=True), min_size=1, max_size=4, unique=True
)
vehicle_ids = st.from_regex(r"[a-z][a-z0-9]{0,8}-[0-9]{1,4}", fullmatch=True)


@st.composite
def worlds(
    draw: st.DrawFn,
) -> tuple[dict[str, str], str, list[tuple[str, str]], UnknownVehicles]:
    """A registry (vehicle -> fleet), a token's fleet, a batch of (vehicle, claimed fleet)
    mixing the fleet's own, other fleets' and unregistered vehicles, and the policy."""
    names = draw(fleets)
    registered = draw(st.dictionaries(vehicle_ids, st.sampled_from(names), max_size=12))
    token_fleet = draw(st.sampled_from(names))
    strangers = draw(st.lists(vehicle_ids.filter(lambda v: v not in registered), max_size=3))
    pool = [*registered, *strangers] or ["lonely-1"]
    batch = draw(
        st.lists(
            st.tuples(st.sampled_from(pool), st.sampled_from(["", token_fleet])),
            min_size=1,
            max_size=20,
        )
    )
    return registered, token_fleet, batch, draw(st.sampled_from(list(UnknownVehicles)))


def _event(vehicle: str, fleet: str, seq: int) -> telemetry_pb2.Telemetry:
    return telemetry_pb2.Telemetry(
        vehicle_id=vehicle,
        fleet_id=fleet,
        seq=seq,
        event_time_us=NOW - 1_000_000,
        location=telemetry_pb2.Location(lat=52.37, lon=4.89),
    )


@settings(max_examples=300, deadline=None)
@given(worlds())
def test_an_accepted_event_is_always_of_a_vehicle_the_tokens_fleet_may_send(
    world: tuple[dict[str, str], str, list[tuple[str, str]], UnknownVehicles],
) -> None:
    registered, token_fleet, batch, policy = world
    registry = VehicleRegistry(
        Vehicle(vid, fleet, "van") for vid, fleet in sorted(registered.items())
    )
    tenancy = Tenancy(registry, unknown=policy)
    events = [_event(v, f, seq) for seq, (v, f) in enumerate(batch, start=1)]
    verdict = validate_batch(
        events,
        fleet_id=token_fleet,
        now_us=NOW,
        max_future_us=5 * MINUTE,
        late_after_us=5 * MINUTE,
        ids=VehicleIdCheck(),
        owners=tenancy.owners,
        reject_unknown=tenancy.reject_unknown,
    )
    assert verdict.foreign_fleet is None
    for i in verdict.accepted:
        owner = registered.get(events[i].vehicle_id)
        if owner is None:
            assert policy is UnknownVehicles.ACCEPT
        else:
            assert owner == token_fleet
    refused = {r.index: r for r in verdict.rejected}
    assert set(refused) | set(verdict.accepted) == set(range(len(events)))
    for i, e in enumerate(events):
        owner = registered.get(e.vehicle_id)
        should_refuse = (owner is not None and owner != token_fleet) or (
            owner is None and policy is UnknownVehicles.REJECT
        )
        assert (i in refused) is should_refuse
        if should_refuse:
            r = refused[i]
            assert (r.code, r.field) == (ingest_pb2.REJECT_CODE_NOT_FLEET_VEHICLE, "vehicle_id")
            assert e.vehicle_id in r.reason
            for other in set(registered.values()) - {token_fleet}:
                assert repr(other) not in r.reason


def test_without_a_registry_every_vehicle_is_the_callers_unless_unknown_ones_are_refused() -> None:
    open_door = Tenancy.from_file(None, unknown=UnknownVehicles.ACCEPT, check_interval_s=5)
    assert open_door.owners is None
    closed = Tenancy.from_file(None, unknown=UnknownVehicles.REJECT, check_interval_s=5)
    assert closed.owners == {} and closed.reject_unknown


def test_a_registry_edit_moves_a_vehicle_between_fleets(tmp_path: Path) -> None:
    path = tmp_path / "vehicles.csv"
    write_csv([Vehicle("v-1", "fleet-a", "van")], path)
    tenancy = Tenancy.from_file(path, unknown=UnknownVehicles.ACCEPT, check_interval_s=5)
    assert tenancy.owners == {"v-1": "fleet-a"}
    write_csv([Vehicle("v-1", "fleet-b", "van"), Vehicle("v-2", "fleet-a", "bus")], path)
    tenancy.refresh(now=time.monotonic() + 5)  # the next check is due
    assert tenancy.owners == {"v-1": "fleet-b", "v-2": "fleet-a"}


def test_a_missing_registry_file_is_named_with_its_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="FLEET_REGISTRY_PATH"):
        Tenancy.from_file(
            tmp_path / "absent.csv", unknown=UnknownVehicles.ACCEPT, check_interval_s=5
        )
