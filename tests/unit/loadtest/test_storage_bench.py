"""The storage benchmark's erasure variant: its vehicles, its place among the variants, the
report's sentence, and the option on the command line."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from fleetpipe.cli import build_app
from fleetpipe_dev.bench.harness import RunResult, Summary
from fleetpipe_dev.bench.storage import VARIANTS, WITH_LAKE, variants
from fleetpipe_dev.bench.storage_erasures import erasure_cost, erasures_label, other_vehicles
from fleetpipe_loadtest import records

pytestmark = pytest.mark.unit


def test_the_erased_vehicles_are_of_the_inputs_fleet_and_never_in_the_input() -> None:
    vehicles = 300
    named = {e.telemetry.vehicle_id for e in records.enriched_stream(vehicles, 3 * vehicles)}
    erased = other_vehicles(vehicles, 25)
    assert len(named) == vehicles
    assert len(set(erased)) == 25
    assert not named & set(erased)
    fleet = {v.rsplit("-veh-", 1)[0] for v in named}
    assert {v.rsplit("-veh-", 1)[0] for v in erased} == fleet == {"fleet-1"}


def test_the_erasure_variant_is_the_lakes_writer_with_erasures_and_only_when_asked() -> None:
    assert [(v.label, v.erasures) for v in variants(0)] == [(label, 0) for label in VARIANTS]
    plan = variants(20)
    assert [v.label for v in plan] == [*VARIANTS, erasures_label(20)]
    checked = plan[-1]
    assert checked.erasures == 20
    assert checked.env == VARIANTS[WITH_LAKE]


def _summary(label: str, cpu_s: float, wall_s: float) -> Summary:
    return Summary.of(label, [RunResult(label, 100_000, wall_s, cpu_s) for _ in range(3)])


def test_the_report_gives_the_checks_cost_per_row_against_the_same_writer_without_it() -> None:
    plain = _summary(WITH_LAKE, cpu_s=1.0, wall_s=2.0)  # 10 µs per row, 50,000 rows/s
    checked = _summary(erasures_label(20), cpu_s=1.05, wall_s=2.5)  # 10.5 µs, 40,000 rows/s
    server = {WITH_LAKE: [4.0, 4.2, 9.0], erasures_label(20): [4.5, 4.7, 4.6]}
    sentence = erasure_cost(checked, plain, server, erasures=20)
    assert "20 erasures on record" in sentence
    assert f"+0.50 µs CPU per row against {WITH_LAKE}" in sentence
    assert "rows/s ratio 0.80" in sentence
    assert "PostgreSQL +0.40 µs per row" in sentence, "medians: 4.6 against 4.2"
    assert "the shared lock" not in erasure_cost(checked, plain, {}, erasures=20)


def test_the_command_offers_the_number_of_erasures() -> None:
    result = CliRunner(env={"COLUMNS": "200"}).invoke(
        build_app(), ["bench", "storage-writer", "--help"]
    )
    assert result.exit_code == 0, result.output
    assert "--erasures" in result.output
    assert "erasure check" in result.output
    refused = CliRunner().invoke(build_app(), ["bench", "storage-writer", "--erasures", "-1"])
    assert refused.exit_code == 2
    assert "--erasures" in refused.output
