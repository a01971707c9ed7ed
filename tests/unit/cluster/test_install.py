"""What ``fleetpipe dev cluster install`` gives the chart: a FleetPipeline two cores carry and
the Secrets it names, with nothing secret in the values."""

from __future__ import annotations

import json

import pytest
import yaml

from fleet_operator.sizing import consumer_cap, partitions_for, sized_replicas
from fleet_operator.spec import Component, parse_spec
from fleetpipe.registry import Vehicle
from fleetpipe_dev.cluster.install import (
    FLEET,
    REGISTRY_CONFIG_MAP,
    REGISTRY_KEY,
    PipelineSize,
    TwilioAccount,
    pipeline_values,
    registry_config_map,
    secrets_list,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("vehicles", "partitions", "replicas"),
    [
        pytest.param(50_000, 50, 2, id="50k"),
        pytest.param(100_000, 100, 4, id="100k"),
    ],
)
def test_the_default_pipeline_has_the_designs_partitions_and_replicas_following_the_fleet(
    vehicles: int, partitions: int, replicas: int
) -> None:
    values = pipeline_values(PipelineSize(vehicles=vehicles))
    # What the operator makes of it, with the brokers the chart adds (its dev Kafka).
    raw = values["pipeline"]["spec"]
    spec = parse_spec({**raw, "kafka": {"bootstrapServers": "fleetpipe-kafka:9092"}})
    assert partitions_for(spec.fleet.vehicles, spec.fleet.vehicles_per_partition) == partitions
    cap = consumer_cap(spec, partitions)
    assert {sized_replicas(spec, c, cap) for c in Component} == {replicas}
    assert spec.registry is not None
    assert spec.registry.config_map_name == REGISTRY_CONFIG_MAP


def test_the_values_name_secrets_and_hold_none() -> None:
    text = yaml.safe_dump(pipeline_values(PipelineSize()))
    account = TwilioAccount("AC" + "1" * 32, "a-token-of-the-test", "+15550100")
    docs = secrets_list(account, token="bearer-of-the-test", db_password="pw-of-the-test")
    for secret in ("a-token-of-the-test", "bearer-of-the-test", "pw-of-the-test"):
        assert secret not in text
    by_name = {d["metadata"]["name"]: d["stringData"] for d in docs["items"]}
    spec = pipeline_values(PipelineSize())["pipeline"]["spec"]
    named = {
        spec["ingest"]["tokensSecret"],
        spec["notification"]["twilioSecret"],
        spec["storage"]["databaseSecret"],
        "fleetpipe-loadtest",
    }
    assert set(by_name) == named
    assert json.loads(by_name[spec["ingest"]["tokensSecret"]]["tokens.yaml"]) == {
        "bearer-of-the-test": FLEET
    }
    # Twilio's cloud: no base URL; the stand-in: its URL on the node address.
    assert "api_base_url" not in by_name[spec["notification"]["twilioSecret"]]
    local = TwilioAccount("AC" + "1" * 32, "t", "+15550100", "http://10.88.0.1:18090")
    docs = secrets_list(local, token="x", db_password="y")
    twilio = next(d for d in docs["items"] if d["metadata"]["name"] == "fleetpipe-twilio")
    assert twilio["stringData"]["api_base_url"] == "http://10.88.0.1:18090"


def test_the_registry_config_map_holds_the_vehicles_as_csv() -> None:
    vehicle = Vehicle("fleet-1-r1-veh-000001", FLEET, driver_phone="+15550000001")
    cm = registry_config_map([vehicle])
    assert cm["metadata"]["name"] == REGISTRY_CONFIG_MAP
    lines = cm["data"][REGISTRY_KEY].splitlines()
    assert lines[0].startswith("vehicle_id,fleet_id,")
    assert lines[1].startswith("fleet-1-r1-veh-000001,fleet-1,")
    assert registry_config_map([])["data"][REGISTRY_KEY].count("\n") == 1
