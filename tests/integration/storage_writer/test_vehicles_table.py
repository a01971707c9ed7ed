"""The vehicles table follows the registry file through a running storage writer: every
vehicle with its model, type, colour and fuel; a reload that changes nothing writes nothing; a
changed vehicle is updated; one taken out of the registry is kept, marked removed, and comes
back when the registry names it again."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from fleetpipe.core.settings import KafkaSettings, Topics
from fleetpipe.registry import write_csv
from fleetpipe_dev.testing import wait_for
from support.registrywriter import registry_fleet, start_registry_writer, vehicle_syncs
from support.servers import Schema

pytestmark = pytest.mark.integration


def test_vehicles_table_follows_the_registry(
    kafka_settings: KafkaSettings, topics: Topics, pg_schema: Schema, tmp_path: Path
) -> None:
    registry = tmp_path / "vehicles.csv"
    proc = start_registry_writer(
        kafka_settings, topics, pg_schema, registry, tmp_path / "writer.log"
    )

    def table() -> dict[str, tuple[Any, ...]]:
        proc.check_alive()
        with psycopg.connect(pg_schema.dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(pg_schema.name)))
            try:
                rows = conn.execute(
                    "SELECT vehicle_id, fleet_id, vehicle_type, model, colour, fuel, electric,"
                    " updated_at, removed_at FROM vehicles"
                ).fetchall()
            except psycopg.errors.UndefinedTable:
                return {}  # the writer has not migrated the schema yet
        return {str(r[0]): tuple(r[1:]) for r in rows}

    def when(ok: Callable[[dict[str, tuple[Any, ...]]], bool], what: str) -> dict[str, Any]:
        def check() -> dict[str, tuple[Any, ...]] | None:
            found = table()
            return found if found and ok(found) else None

        return wait_for(check, timeout=60, what=what)

    try:
        first = when(lambda t: len(t) == 3, "the vehicles synced")
        assert first["veh-1"][:6] == ("fleet-a", "car", "Toyota Corolla", "red", "hybrid", False)
        assert first["veh-2"][4:6] == ("electric", True), "an electric vehicle's fuel"
        assert first["veh-3"][:5] == ("fleet-b", "truck", "Volvo FH", "blue", "diesel")
        assert all(row[7] is None for row in first.values())

        # The same registry written again: reloaded and synced, and nothing changes.
        before = vehicle_syncs(proc)
        write_csv(registry_fleet(), registry)
        wait_for(lambda: vehicle_syncs(proc) > before, timeout=30, what="a second sync")
        assert table() == first

        # veh-1 repainted, veh-3 taken out of the registry.
        fleet = registry_fleet()
        write_csv([replace(fleet[0], colour="green"), fleet[1]], registry)
        changed = when(lambda t: t["veh-3"][7] is not None, "veh-3 marked removed")
        assert changed["veh-1"][3] == "green"
        updated_at = changed["veh-1"][6]
        assert isinstance(updated_at, datetime) and updated_at > first["veh-1"][6]
        assert changed["veh-2"] == first["veh-2"], "an unchanged vehicle is not touched"
        assert changed["veh-3"][:6] == first["veh-3"][:6], "a removed vehicle keeps its row"

        # Named again: it is back.
        write_csv(registry_fleet(), registry)
        back = when(lambda t: t["veh-3"][7] is None, "veh-3 back")
        assert back["veh-1"][3] == "red"
    finally:
        proc.stop()
