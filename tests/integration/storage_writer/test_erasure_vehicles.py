"""An erased vehicle's row of the vehicles dimension: the erasure deletes it, and the running
writer's registry sync does not bring it back while the registry still names the vehicle (nor
when the registry changes its entry); every other vehicle stays in sync."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from fleetpipe.core.settings import KafkaSettings, Topics
from fleetpipe.registry import write_csv
from fleetpipe_dev.testing import wait_for
from support.registrywriter import registry_fleet, start_registry_writer, vehicle_syncs
from support.servers import Schema

pytestmark = pytest.mark.integration


def test_an_erased_vehicle_stays_out_of_the_vehicles_table(
    kafka_settings: KafkaSettings, topics: Topics, pg_schema: Schema, tmp_path: Path
) -> None:
    registry = tmp_path / "vehicles.csv"
    proc = start_registry_writer(
        kafka_settings, topics, pg_schema, registry, tmp_path / "writer.log"
    )

    def vehicles() -> dict[str, str]:
        proc.check_alive()
        with psycopg.connect(pg_schema.dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(pg_schema.name)))
            try:
                rows = conn.execute("SELECT vehicle_id, colour FROM vehicles").fetchall()
            except psycopg.errors.UndefinedTable:
                return {}  # the writer has not migrated the schema yet
        return {str(v): str(c) for v, c in rows}

    try:
        wait_for(lambda: len(vehicles()) == 3, timeout=60, what="the vehicles synced")
        erase = subprocess.run(
            [
                *(sys.executable, "-m", "fleetpipe.cli", "erase", "--vehicle", "veh-2"),
                *("--no-lake", "--reason", "erasure request 12"),
            ],
            env={
                **os.environ,
                "FLEET_POSTGRES__DSN": pg_schema.dsn,
                "FLEET_POSTGRES__SCHEMA_NAME": pg_schema.name,
            },
            capture_output=True,
            timeout=120,
            check=False,
        )
        assert erase.returncode == 0, erase.stderr.decode()
        assert set(vehicles()) == {"veh-1", "veh-3"}

        # The registry, unchanged, synced again; then with veh-2's entry and veh-1's changed.
        before = vehicle_syncs(proc)
        write_csv(registry_fleet(), registry)
        wait_for(lambda: vehicle_syncs(proc) > before, timeout=30, what="a sync after the erasure")
        assert set(vehicles()) == {"veh-1", "veh-3"}
        fleet = registry_fleet()
        write_csv([replace(fleet[0], colour="green"), replace(fleet[1], colour="black")], registry)
        wait_for(lambda: vehicles().get("veh-1") == "green", timeout=30, what="veh-1 repainted")
        assert set(vehicles()) == {"veh-1", "veh-3"}, "veh-2 stays out; veh-3 marked removed"
        with psycopg.connect(pg_schema.dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(pg_schema.name)))
            row = conn.execute("SELECT rows_deleted FROM erasure_audit").fetchone()
        assert row is not None and row[0]["vehicles"] == 1
        assert "erased vehicle(s) of the registry left out" in (tmp_path / "writer.log").read_text()
    finally:
        proc.stop()
