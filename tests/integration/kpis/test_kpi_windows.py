"""The KPI windows of a recorded input, through real enrichment, the KPI stage and the storage
writer on Kafka and PostgreSQL, equal a reference computed apart with DuckDB SQL over the same
events joined to the vehicles table — late events inside the allowed lateness counted, the one
beyond it dropped and dead-lettered — and a SIGKILL of the stage mid-run changes nothing."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleetpipe.core.kafka import build_admin
from fleetpipe.core.settings import KafkaSettings, Topics
from fleetpipe.pb.v1 import deadletter_pb2, enriched_pb2, kpi_pb2, telemetry_pb2
from fleetpipe_dev.testing import read_all, transaction_open, wait_for
from support.kpireference import Figures, reference_windows
from support.kpis import HOP_S, WINDOW_S, KpiRig, Recorded, kpi_rig, record
from support.messages import decoded, headers_of
from support.servers import Schema

pytestmark = pytest.mark.integration

Stored = tuple[dict[tuple[int, str, str, str], Figures], dict[tuple[int, str, str, str, str], int]]


@pytest.fixture
def rig(
    kafka_settings: KafkaSettings, topics: Topics, pg_schema: Schema, tmp_path: Path
) -> Iterator[KpiRig]:
    yield from kpi_rig(kafka_settings, topics, pg_schema.dsn, pg_schema.name, tmp_path)


def _reference(rig: KpiRig, recorded: Recorded) -> Stored:
    # Model and type from the vehicles table the writer keeps, not from the stage's input.
    vehicles = [
        (str(v), str(m), str(t))
        for v, m, t in rig.rows("SELECT vehicle_id, model, vehicle_type FROM vehicles")
    ]
    assert len(vehicles) == len(recorded.registry)
    return reference_windows(
        recorded.counted,
        recorded.alerts,
        vehicles,
        size_us=WINDOW_S * 1_000_000,
        hop_us=HOP_S * 1_000_000,
    )


def _stored(rig: KpiRig) -> Stored:
    figures = {
        (int(start), str(fleet), str(dim), str(value)): Figures(
            int(active),
            float(distance),
            float(top),
            float(avg),
            int(samples),
        )
        for start, fleet, dim, value, active, distance, top, avg, samples in rig.rows(
            "SELECT (extract(epoch FROM window_start) * 1000000)::bigint, fleet_id, dimension,"
            " dimension_value, active_vehicles, distance_km, max_speed_kmh, avg_speed_kmh,"
            " speed_samples FROM kpi_windows"
        )
    }
    alerts = {
        (int(start), str(fleet), str(dim), str(value), str(rule)): int(n)
        for start, fleet, dim, value, rule, n in rig.rows(
            "SELECT (extract(epoch FROM window_start) * 1000000)::bigint, fleet_id, dimension,"
            " dimension_value, rule, alerts FROM kpi_window_alerts"
        )
    }
    return figures, alerts


def _same(stored: Figures, expected: Figures) -> bool:
    return (
        stored.active_vehicles == expected.active_vehicles
        and stored.speed_samples == expected.speed_samples
        and math.isclose(stored.distance_km, expected.distance_km, rel_tol=1e-9, abs_tol=1e-9)
        and math.isclose(stored.max_speed_kmh, expected.max_speed_kmh, rel_tol=1e-6)
        and math.isclose(stored.avg_speed_kmh, expected.avg_speed_kmh, rel_tol=1e-9)
    )


def _assert_windows(rig: KpiRig, recorded: Recorded) -> None:
    """Every reference window stored, equal, and nothing else; each emitted record once; the
    too-late event dead-lettered once."""
    expected_figures, expected_alerts = _reference(rig, recorded)
    assert len(expected_figures) > 50, "the input spans many windows and groups"
    assert sum(expected_alerts.values()) > 0

    def matches() -> bool:
        for proc in rig.processes.values():
            if proc.alive():
                proc.check_alive()
        figures, alerts = _stored(rig)
        return (
            set(figures) == set(expected_figures)
            and all(_same(figures[k], v) for k, v in expected_figures.items())
            and alerts == expected_alerts
        )

    try:
        wait_for(matches, timeout=180, interval=1.0, what="every window stored as expected")
    except TimeoutError:
        figures, alerts = _stored(rig)
        missing = sorted(set(expected_figures) - set(figures))[:5]
        extra = sorted(set(figures) - set(expected_figures))[:5]
        wrong = [
            (k, figures[k], v)
            for k, v in expected_figures.items()
            if k in figures and not _same(figures[k], v)
        ][:5]
        pytest.fail(
            f"windows differ: missing {missing}, unexpected {extra}, wrong {wrong}; "
            f"alerts {alerts} != {expected_alerts}"
        )

    records = [
        decoded(m, kpi_pb2.FleetKpi)
        for m in read_all(rig.kafka, rig.topics.kpis, read_committed=True, idle_s=0.5)
    ]
    emitted = Counter(
        (r.window_end_us, r.fleet_id, r.dimension, r.dimension_value, r.source_partition)
        for r in records
    )
    assert max(emitted.values()) == 1, "no window emitted twice"
    stored_parts = rig.rows("SELECT count(*) FROM kpi_window_parts")[0][0]
    assert stored_parts == len(records)

    dead = [
        m
        for m in read_all(rig.kafka, rig.topics.deadletter, read_committed=True, idle_s=0.5)
        if headers_of(m).get("fp-reason") == b"too_late"
    ]
    assert len(dead) == 1, "exactly the one event beyond the allowed lateness"
    letter = decoded(dead[0], deadletter_pb2.DeadLetter)
    event = enriched_pb2.EnrichedTelemetry.FromString(letter.payload).telemetry
    assert (event.vehicle_id, event.seq) == (recorded.too_late.vehicle_id, recorded.too_late.seq)


def _prepare(rig: KpiRig, **enrichment: str) -> Recorded:
    recorded = record()
    rig.start_writer(recorded.registry)
    wait_for(
        lambda: rig.vehicles() == len(recorded.registry),
        timeout=60,
        what="the vehicles table synced from the registry",
    )
    rig.produce_alerts(recorded.alerts)
    rig.enrich(recorded.events, **enrichment)
    assert all(e.late for e in recorded.late) and recorded.too_late.late
    return recorded


def test_kpi_windows_equal_a_duckdb_reference_with_late_events(rig: KpiRig) -> None:
    recorded = _prepare(rig)
    rig.start_kpis()
    _assert_windows(rig, recorded)


def test_sigkill_of_the_kpi_stage_mid_run_gives_the_same_windows_once(rig: KpiRig) -> None:
    # One record per event on the enriched topic and small held commits, one a batch (commit
    # interval 0): many transactions (about 55 of a quarter second each for the ~1,100
    # events), so half the input leaves seconds of them to catch one open and kill the stage
    # inside it. (Kills inside transactions of many batches: tests/integration/core.)
    recorded = _prepare(rig, FLEET_KAFKA__PACK_EVENTS="1")
    total = len(recorded.events)
    proc = rig.start_kpis(
        FLEET_KAFKA__MAX_BATCH="20", FLEET_HOLD_MS="250", FLEET_KAFKA__COMMIT_INTERVAL_MS="0"
    )

    def halfway() -> bool:
        proc.check_alive()
        return rig.committed_events() >= total // 2

    wait_for(halfway, timeout=120, interval=0.05, what="half the input committed")
    admin = build_admin(rig.kafka, timeout_s=10)
    wait_for(
        lambda: transaction_open(admin, rig.topics.kpi_state),
        timeout=10,
        interval=0.01,
        what="an open batch",
    )
    proc.kill()
    assert rig.committed_events() < total, "the kill lands mid-run"
    rig.start_kpis()
    _assert_windows(rig, recorded)


def test_recorded_input_has_late_events_inside_and_beyond_the_lateness() -> None:
    recorded = record()
    position = {id(e): i for i, e in enumerate(recorded.events)}
    newest_before = 0
    lateness = []
    for event in recorded.events:
        if any(event is e for e in (*recorded.late, recorded.too_late)):
            lateness.append((event, newest_before - event.event_time_us))
        newest_before = max(newest_before, event.event_time_us)
    by_event = {id(e): late for e, late in lateness}
    assert all(0 < by_event[id(e)] < 10_000_000 for e in recorded.late)
    assert by_event[id(recorded.too_late)] > 60_000_000
    assert position[id(recorded.too_late)] == len(recorded.events) - 1
    assert isinstance(recorded.too_late, telemetry_pb2.Telemetry)
