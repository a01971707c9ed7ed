"""A storage writer that syncs the vehicles table from a registry file, for the tests of that
table: a small fleet, the writer started on it, and its count of syncs."""

from __future__ import annotations

import re
from pathlib import Path

from fleetpipe.core.settings import KafkaSettings, Topics
from fleetpipe.registry import Vehicle, write_csv
from fleetpipe_dev.testing import ServiceProcess, service_env
from support.servers import Schema


def registry_fleet() -> list[Vehicle]:
    return [
        Vehicle("veh-1", "fleet-a", "car", "Toyota Corolla", colour="red", fuel="hybrid"),
        Vehicle("veh-2", "fleet-a", "ev", "Kia EV6", electric=True, colour="white"),
        Vehicle("veh-3", "fleet-b", "truck", "Volvo FH", colour="blue", fuel="diesel"),
    ]


def start_registry_writer(
    kafka: KafkaSettings, topics: Topics, pg_schema: Schema, registry: Path, log: Path
) -> ServiceProcess:
    """The writer on the (quiet) KPI topic only, with no lake, reading ``registry`` every
    0.1 s: what it does to the vehicles table is the registry sync's alone."""
    write_csv(registry_fleet(), registry)
    return ServiceProcess(
        "fleetpipe.storage_writer",
        service_env(
            kafka,
            topics,
            {
                "FLEET_GROUP_ID": f"storage-{topics.kpis}",
                "FLEET_INSTANCE_ID": "writer-0",
                "FLEET_INPUTS": '["kpis"]',
                "FLEET_POSTGRES__DSN": pg_schema.dsn,
                "FLEET_POSTGRES__SCHEMA_NAME": pg_schema.name,
                "FLEET_LAKE__ENABLED": "false",
                "FLEET_REGISTRY_PATH": str(registry),
                "FLEET_REGISTRY_CHECK_INTERVAL_S": "0.1",
            },
        ),
        log,
    ).start()


def vehicle_syncs(proc: ServiceProcess) -> int:
    """The writer's successful registry syncs so far (its metric)."""
    found = re.search(
        r'fleetpipe_storage_vehicle_syncs_total\{outcome="ok"\} (\d+)', proc.get("/metrics")[1]
    )
    return int(found.group(1)) if found else 0
