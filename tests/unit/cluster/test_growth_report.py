"""The report of a growth run in pods, from its samples: the markdown names the figures and the
patches' Ready times, the JSON holds the raw run, the three charts are PNG files, and the
verdict names what was lost, stored twice or reopened."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from fleetpipe_dev.cluster.growth import GrowthPlan, write_report
from fleetpipe_dev.cluster.growth_report import (
    GrowthRun,
    Outcome,
    Patch,
    Sample,
    markdown,
    rates,
    verdict,
)
from fleetpipe_dev.cluster.observe import Stored
from support.images import png_size

pytestmark = pytest.mark.unit

SERVICES = ("detection", "enrichment", "ingest", "kpis", "notification", "storage-writer")
GROUPS = ("fleetpipe-detection", "fleetpipe-enrichment", "fleetpipe-storage-writer")


def _sample(t: float) -> Sample:
    """Ten minutes at 300 events/s: grown from 60 s to 360 s (4 replicas, 100 partitions),
    the pipeline not Ready for the 20 s after each patch."""
    grown = 60 <= t < 360
    settling = 60 <= t < 80 or 360 <= t < 380
    replicas = 4 if grown else 2
    return Sample(
        t=t,
        stored=int(300 * t) if t != 100 else None,  # one sample where the database did not answer
        ingested=int(300 * t),
        lag={g: (3000 if settling else 40) for g in GROUPS},
        desired=dict.fromkeys(SERVICES, replicas),
        ready=dict.fromkeys(SERVICES, replicas - (2 if settling and grown else 0)),
        partitions=100 if t >= 70 else 50,
        vehicles=100_000 if grown else 50_000,
        pipeline_ready=not settling,
    )


def _run(samples: int, outcome: Outcome) -> GrowthRun:
    settings = GrowthPlan(minutes=10, grow_at=1, shrink_at=6).settings()
    settings |= {"base_partitions": 50, "partitions_at_start": 50}
    run = GrowthRun(
        "fleetpipe dev cluster growth --minutes 10", "2026-12-07 05:00 UTC", {"cpus": "2"}, settings
    )
    run.samples = [_sample(5.0 * i) for i in range(samples)]
    run.patches = [
        Patch("grow", 60.0, 50_000, 100_000, 12.5, 41.0, 100, dict.fromkeys(SERVICES, 4)),
        Patch("shrink", 360.0, 100_000, 50_000, 8.0, 9.5, 100, dict.fromkeys(SERVICES, 2)),
    ]
    run.outcome = outcome
    return run


CLEAN = Outcome("Complete", Stored(180_000, 180_000, 0, 0), alerts=31, overlapping=[])


@pytest.mark.parametrize(
    "samples", [pytest.param(1, id="one-sample"), pytest.param(121, id="ten-minutes")]
)
def test_the_report_is_markdown_json_and_three_png_charts_beside_it(
    tmp_path: Path, samples: int
) -> None:
    path = tmp_path / "reports" / "growth.md"
    written = write_report(_run(samples, CLEAN), path)

    assert [p.name for p in written] == [
        "growth.md", "growth.json", "growth-rate.png", "growth-lag.png", "growth-replicas.png",
    ]  # fmt: skip
    for chart in written[2:]:
        width, height = png_size(chart)
        assert width >= 600 and height >= 300
    text = path.read_text()
    for chart in written[2:]:
        assert f"]({chart.name})" in text
    raw = json.loads(written[1].read_text())
    assert len(raw["samples"]) == samples
    assert raw["patches"][0]["ready_s"] == 12.5
    assert raw["verdict"] == []


def test_the_markdown_names_the_figures_and_the_patches_ready_times() -> None:
    text = markdown(_run(121, CLEAN), [])

    assert "`fleetpipe dev cluster growth --minutes 10`" in text
    assert "| verdict | **pass** |" in text
    assert "| events accepted (expected) | 180,000 |" in text
    assert "| missing | 0 |" in text
    assert "| stored twice | 0 |" in text
    assert "| rows stored per second, mean of samples | 300 |" in text
    assert "| rows stored per second, lowest and highest over 30 s | 300 – 300 |" in text
    assert "| lag of fleetpipe-enrichment, at worst | 3,000 |" in text
    assert "| alert episodes begun in the run | 31 |" in text
    assert "| episodes reopened or stored twice | 0 |" in text
    assert "| partitions at the start | 50 |" in text
    assert "| partitions | 50 → 100 |" in text
    assert "| replicas of every service | 2 → 4 → 2 |" in text
    assert "| grow | 1:00 | 50,000 → 100,000 | 12.5 s | 41.0 s | 100 | 4 of each service |" in text
    assert "| shrink | 6:00 | 100,000 → 50,000 | 8.0 s | 9.5 s | 100 |" in text
    assert "Machine: cpus 2" in text


def test_rates_span_a_sample_without_a_count() -> None:
    samples = [_sample(t) for t in (90.0, 95.0, 100.0, 105.0)]
    # The sample at 100 s has no stored count: the rate at 105 s spans 95 → 105.
    assert rates(samples, "stored") == [(95.0, 300.0), (105.0, 300.0)]


def test_a_windowed_rate_spans_the_samples_within_the_window() -> None:
    counts = [0, 500, 500, 2000, 2000, 2500]
    samples = [replace(_sample(5.0 * i), stored=c) for i, c in enumerate(counts)]
    # Between samples the rate jumps 100, 0, 300, 0, 100; over 10 s it evens out.
    assert [r for _, r in rates(samples, "stored")] == [100, 0, 300, 0, 100]
    assert rates(samples, "stored", window_s=10) == [
        (5.0, 100.0), (10.0, 50.0), (15.0, 150.0), (20.0, 150.0), (25.0, 50.0),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("outcome", "said"),
    [
        pytest.param(
            Outcome("Failed", Stored(179_990, 180_000, 10, 0), 31, []),
            ["the load Job ended Failed", "10 events missing"],
            id="lost",
        ),
        pytest.param(
            Outcome("Complete", Stored(180_000, 180_000, 0, 4), 31, []),
            ["4 events stored twice"],
            id="duplicated",
        ),
        pytest.param(
            Outcome("Complete", Stored(180_000, 180_000, 0, 0), 31, ["v-1|harsh_brake|..."]),
            ["1 alert episodes reopened or stored twice"],
            id="reopened",
        ),
        pytest.param(
            Outcome(None, None, 0, []),
            ["the load Job ended not at all", "the load Job's log has no accounting"],
            id="no-end",
        ),
    ],
)
def test_the_verdict_names_what_was_lost_duplicated_or_reopened(
    outcome: Outcome, said: list[str]
) -> None:
    run = _run(121, outcome)
    assert verdict(run) == said
    assert "| verdict | **FAIL**: " + "; ".join(said) + " |" in markdown(run, [])


def test_a_run_from_topics_grown_before_says_only_the_replicas_grow() -> None:
    run = _run(121, CLEAN)
    run.settings["partitions_at_start"] = 100
    assert "| partitions at the start | 100, not 50: an earlier growth" in markdown(run, [])


def test_a_patch_the_pipeline_never_followed_fails_the_run() -> None:
    run = _run(121, CLEAN)
    run.patches[0].ready_s = None
    run.patches[1].pods_s = None
    assert verdict(run) == [
        "grow: the pipeline was not Ready again within the run",
        "shrink: the services' pods were not all Ready within the run",
    ]
    assert "| grow | 1:00 | 50,000 → 100,000 | – | 41.0 s |" in markdown(run, [])


@pytest.mark.parametrize(
    ("plan", "wrong"),
    [
        pytest.param(GrowthPlan(), [], id="defaults"),
        pytest.param(GrowthPlan(minutes=4, grow_at=1, shrink_at=2.5), [], id="short"),
        pytest.param(
            GrowthPlan(minutes=4, grow_at=3, shrink_at=2), ["--grow-at < --shrink-at"], id="order"
        ),
        pytest.param(GrowthPlan(minutes=4, shrink_at=4), ["< --minutes"], id="after-the-load"),
        pytest.param(GrowthPlan(interval_s=0.2), ["--interval must be"], id="interval"),
    ],
)
def test_a_plan_says_what_is_wrong_with_it(plan: GrowthPlan, wrong: list[str]) -> None:
    problems = plan.problems()
    assert len(problems) == len(wrong)
    for problem, part in zip(problems, wrong, strict=True):
        assert part in problem
