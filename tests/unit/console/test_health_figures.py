"""The pipeline's health from /metrics text: rates over the window, mean times, lag by
partition, dead letters and Twilio outcomes; a down service reads as down, never as zero."""

from __future__ import annotations

import pytest

from fleetpipe.console.health import HealthHistory, service_health
from fleetpipe.console.scrape import Scrape, parse_metrics

pytestmark = pytest.mark.unit


def _page(consumed: float, produced: float, batches: float, seconds: float, lag: float) -> str:
    return f"""# HELP fleetpipe_records_consumed_total Records consumed
# TYPE fleetpipe_records_consumed_total counter
fleetpipe_records_consumed_total{{topic="fleet.telemetry.raw.v1"}} {consumed}
# HELP fleetpipe_records_produced_total Records produced
# TYPE fleetpipe_records_produced_total counter
fleetpipe_records_produced_total{{topic="fleet.telemetry.enriched.v1"}} {produced}
# HELP fleetpipe_batch_seconds Time to process and commit one batch
# TYPE fleetpipe_batch_seconds histogram
fleetpipe_batch_seconds_bucket{{le="+Inf"}} {batches}
fleetpipe_batch_seconds_count {batches}
fleetpipe_batch_seconds_sum {seconds}
# HELP fleetpipe_consumer_lag Records behind the high watermark
# TYPE fleetpipe_consumer_lag gauge
fleetpipe_consumer_lag{{topic="fleet.telemetry.raw.v1",partition="0"}} {lag}
fleetpipe_consumer_lag{{topic="fleet.telemetry.raw.v1",partition="1"}} 3
# HELP fleetpipe_deadletters_total Records sent to the dead-letter topic
# TYPE fleetpipe_deadletters_total counter
fleetpipe_deadletters_total{{reason="undecodable"}} 2
"""


def _scrape(at: float, text: str) -> Scrape:
    return Scrape("enrichment", at, True, samples=parse_metrics(text))


def test_rates_and_mean_times_come_from_the_increase_over_the_window() -> None:
    old = _scrape(100.0, _page(1000, 990, 10, 0.5, 7))
    new = _scrape(110.0, _page(1500, 1490, 30, 1.5, 12))
    h = service_health(new, old)
    assert h.up
    assert h.in_per_s == pytest.approx(50.0) and h.out_per_s == pytest.approx(50.0)
    assert h.processing_ms == pytest.approx(50.0)  # 1.0 s over 20 batches
    assert h.lag == {"fleet.telemetry.raw.v1/0": 12.0, "fleet.telemetry.raw.v1/1": 3.0}
    assert h.total_lag == 15.0
    assert h.deadletters == {"undecodable": 2.0}
    assert h.db_write_ms is None, "enrichment writes no database"


def test_a_restarted_service_counts_from_zero_instead_of_going_negative() -> None:
    old = _scrape(100.0, _page(1000, 990, 10, 0.5, 0))
    new = _scrape(104.0, _page(40, 40, 2, 0.1, 0))
    assert service_health(new, old).in_per_s == pytest.approx(10.0)


def test_a_down_service_has_no_figures_at_all() -> None:
    down = Scrape("detection", 110.0, False, "connection refused")
    h = service_health(down, _scrape(100.0, _page(1, 1, 1, 0.1, 0)))
    assert not h.up and h.error == "connection refused"
    assert h.in_per_s is None and h.out_per_s is None and h.total_lag is None
    assert h.as_dict()["in_per_s"] is None


def test_the_history_takes_rates_over_the_window_and_keeps_a_point_per_read() -> None:
    history = HealthHistory(window_s=10.0, points=3)
    for i in range(6):
        at = 100.0 + 2 * i
        history.add({"enrichment": _scrape(at, _page(100 * i, 100 * i, i, 0.1 * i, i))})
    latest = history.latest["enrichment"]
    # The oldest scrape kept is at or just before the window's start: 110 - 10 = 100.
    assert latest.in_per_s == pytest.approx(50.0)
    assert [round(p.at) for p in history.points] == [106, 108, 110]
    assert history.points[-1].lag == {"enrichment": 8.0}


def test_a_page_that_is_not_prometheus_text_is_refused() -> None:
    with pytest.raises(ValueError):
        parse_metrics("<html>not metrics</html>\n")
