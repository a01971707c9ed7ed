"""The operations view on the demo's data, in headless Chromium: `fleetpipe demo` runs the five
services, the console and the simulator (with crashes injected) on the session's Kafka,
PostgreSQL and Jaeger, every event traced. While the fleet drives, the console's health page
shows each service's rate above zero and draws the lag; once the run is over (the demo stays up
with --stay), an injected crash's alert opens its trace as a waterfall with spans of all five
services, parents before children. Screenshots go with the test output (FLEET_TEST_OUTPUT).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from fleetpipe_dev.browser import chromium
from fleetpipe_dev.stack.jaeger import JaegerServer
from fleetpipe_dev.testing import wait_for
from support.servers import BrokerHandle, Schema

pytestmark = pytest.mark.e2e

OUTPUT = Path(os.environ.get("FLEET_TEST_OUTPUT", "build/test-output"))
SERVICES = ("ingest", "enrichment", "detection", "notification", "storage-writer")
# Jaeger's service names: the demo names each service's spans as the operator does.
TRACED = {f"fleetpipe-{s}" for s in SERVICES}
# Crashes often enough that alerts reach notification within every half minute of driving.
SCENARIOS = "crash=150,sos=40"
VEHICLES = 30


@dataclass
class Demo:
    proc: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    def text(self) -> str:
        return "".join(self.lines)

    def line(self, pattern: str) -> re.Match[str] | None:
        if self.proc.poll() is not None:
            raise AssertionError(
                f"the demo exited ({self.proc.returncode}):\n{self.text()[-4000:]}"
            )
        for line in self.lines:
            found = re.search(pattern, line)
            if found:
                return found
        return None


@pytest.fixture
def demo(
    kafka: BrokerHandle, pg_schema: Schema, jaeger: JaegerServer, tmp_path: Path
) -> Iterator[Demo]:
    suffix = f"ops{uuid.uuid4().hex[:8]}"
    command = [
        sys.executable, "-m", "fleetpipe.cli", "demo",
        "--partitions", "3",
        "--kafka", kafka.bootstrap,
        "--postgres-dsn", pg_schema.dsn,
        "--schema", pg_schema.name,
        "--topic-suffix", suffix,
        "--workdir", str(tmp_path),
        "--vehicles", str(VEHICLES), "--duration", "45", "--scenarios", SCENARIOS,
        "--jaeger", f"{jaeger.otlp_endpoint},{jaeger.query_url}",
        "--trace-ratio", "1",
        "--stay",
    ]  # fmt: skip
    proc = subprocess.Popen(
        command,
        env={**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    run = Demo(proc)

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            run.lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        yield run
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        reader.join(10)


def _loaded(browser: WebDriver, css: str) -> bool:
    return bool(browser.find_elements(By.CSS_SELECTOR, css))


def _rates(browser: WebDriver) -> dict[str, float]:
    found: dict[str, float] = browser.execute_script(
        "const out = {};"
        "document.querySelectorAll('#health-table tbody tr').forEach((tr) => {"
        "  const cell = tr.querySelector('td.in').textContent.replace(/,/g, '');"
        "  out[tr.dataset.service] = Number(cell) || 0; });"
        "return out;"
    )
    return found


def test_the_demo_shows_its_health_live_and_a_crash_alerts_trace_across_five_services(
    demo: Demo, pg_schema: Schema
) -> None:
    started = wait_for(
        lambda: demo.line(r"console\s+(http://127\.0\.0\.1:\d+/#token=\S+)"),
        timeout=240,
        interval=0.5,
        what="the demo to start the console",
    )
    assert started is not None
    page = started.group(1)
    assert demo.line(r"health\s+http://127\.0\.0\.1:\d+/#token=\S+&page=health")
    assert demo.line(r"traces\s+spans to http"), "the demo says where traces go and are read"

    OUTPUT.mkdir(parents=True, exist_ok=True)
    with chromium() as browser:
        # While the fleet drives, the map: the demo's vehicles on it, and an injected crash
        # appearing among the open alerts without a reload; a click shows its explanation.
        browser.get(page)

        def map_holds_the_fleet() -> bool:
            if browser.execute_script("return document.body.dataset.loaded") != "true":
                return False
            shown = browser.find_element(By.ID, "vehicle-count").text
            if shown == str(VEHICLES):
                return True
            browser.refresh()  # vehicles that had not reported yet when the page loaded
            return False

        wait_for(map_holds_the_fleet, timeout=120, interval=2.0, what=f"{VEHICLES} on the map")
        # Found and clicked in the page itself: the list is redrawn on every alert, so element
        # handles go stale.
        listed = "[...document.querySelectorAll('#alerts button[data-alert-id]')]"
        at_load = browser.execute_script(f"return {listed}.map((b) => b.dataset.alertId)")
        clicked = wait_for(
            lambda: browser.execute_script(
                f"const b = {listed}.find((b) => b.textContent.includes(' crash')"
                " && !arguments[0].includes(b.dataset.alertId));"
                "if (b) { b.click(); return b.dataset.alertId; } return null;",
                at_load,
            ),
            timeout=120,
            interval=0.5,
            what="an injected crash among the open alerts, without a reload",
        )
        assert clicked not in at_load
        explained = wait_for(
            lambda: (
                _loaded(browser, "#details #explanation")
                and browser.find_element(By.CSS_SELECTOR, "#details #explanation").text
            ),
            timeout=30,
            what="the crash's explanation",
        )
        assert explained.startswith("crash on "), explained
        assert browser.save_screenshot(str(OUTPUT / "console-demo-map.png"))

        # While the fleet drives: every service's rate goes above zero on the health page
        # (away first: the same page with another fragment would not load again).
        browser.get("about:blank")
        browser.get(page + "&page=health")
        wait_for(
            lambda: _loaded(browser, "#health-table tbody tr"),
            timeout=60,
            what="the health page's table",
        )
        seen_moving: set[str] = set()

        def every_service_moved() -> bool:
            rates = _rates(browser)
            seen_moving.update(s for s, r in rates.items() if r > 0)
            return seen_moving >= set(SERVICES)

        wait_for(
            every_service_moved,
            timeout=120,
            interval=0.5,
            what=f"a non-zero rate for every service (so far {sorted(seen_moving)})",
        )
        lines = browser.find_elements(By.CSS_SELECTOR, "#lag-chart polyline")
        assert {line.get_attribute("data-service") for line in lines} >= {"enrichment"}
        assert all(line.get_attribute("points") for line in lines), "every series is drawn"
        assert _loaded(browser, "#rate-chart polyline[data-service='ingest']")
        assert browser.save_screenshot(str(OUTPUT / "console-health.png"))

        # Once the run is over (stored and settled), open an injected crash's trace.
        wait_for(lambda: demo.line(r"staying"), timeout=300, interval=1.0, what="the run to finish")
        with psycopg.connect(pg_schema.dsn, options=f"-c search_path={pg_schema.name}") as conn:
            row = conn.execute(
                "SELECT a.alert_id FROM alerts a WHERE a.rule = 'crash' AND EXISTS ("
                "  SELECT 1 FROM notification_ledger n"
                "  WHERE n.alert_id = a.alert_id AND n.status = 'SENT')"
                " ORDER BY a.episode_start LIMIT 1"
            ).fetchone()
        assert row is not None, "an injected crash alerted and its driver was told"
        (alert_id,) = row

        def complete_trace() -> list[dict[str, str]] | None:
            # From the alert's explanation, its trace. Spans reach Jaeger in each service's own
            # export: opened again until spans of all five are in.
            browser.find_element(By.CSS_SELECTOR, "nav .tab[data-page='map']").click()
            browser.execute_script(
                "document.getElementById('details').replaceChildren();"
                "window.FleetConsole.showAlert(arguments[0])",
                alert_id,
            )
            wait_for(
                lambda: _loaded(browser, "#details button[data-trace-alert]"),
                timeout=30,
                what="the alert's explanation",
            )
            browser.find_element(By.CSS_SELECTOR, "#details button[data-trace-alert]").click()
            wait_for(
                lambda: (
                    browser.execute_script(
                        "return document.getElementById('page-trace').dataset.loaded"
                    )
                    == "true"
                ),
                timeout=30,
                what="the trace page",
            )
            rows: list[dict[str, str]] = browser.execute_script(
                "const first = document.querySelector('#page-trace section.trace');"
                "if (!first) return [];"
                "return [...first.querySelectorAll('.span-row')].map((r) => ({"
                "  id: r.dataset.spanId, parent: r.dataset.parentId,"
                "  service: r.dataset.service, name: r.dataset.name}));"
            )
            return rows if {r["service"] for r in rows} >= TRACED else None

        rows = wait_for(
            complete_trace, timeout=90, interval=2.0, what="the crash's trace with five services"
        )
        assert rows is not None
        # Causal order: every span comes after its parent; the trace starts at ingest.
        position = {r["id"]: i for i, r in enumerate(rows)}
        for i, r in enumerate(rows):
            if r["parent"]:
                assert position[r["parent"]] < i, (r, rows)
        assert rows[0]["service"] == "fleetpipe-ingest" and rows[0]["name"].endswith(" publish")

        def first(service: str, name_part: str) -> int:
            return next(
                i for i, r in enumerate(rows) if r["service"] == service and name_part in r["name"]
            )

        chain = [
            first("fleetpipe-ingest", "publish"),
            first("fleetpipe-enrichment", "process"),
            first("fleetpipe-detection", "process"),
            first("fleetpipe-detection", "alert crash"),
            first("fleetpipe-notification", "process"),
            first("fleetpipe-notification", "twilio"),
        ]
        assert chain == sorted(chain), rows
        assert first("fleetpipe-storage-writer", "process") > chain[1]
        title = browser.find_element(By.ID, "trace-title").text
        assert "crash" in title
        hops = browser.find_elements(By.CSS_SELECTOR, "#page-trace .span-row .hop")
        assert any(re.search(r"fleet\.alerts\.v1\.\S+ p\d+ @\d+", h.text) for h in hops), [
            h.text for h in hops
        ]
        assert browser.save_screenshot(str(OUTPUT / "console-trace.png"))

    demo.proc.send_signal(signal.SIGINT)
    assert demo.proc.wait(120) == 0, demo.text()[-4000:]
    assert "every acknowledged event stored exactly once" in " ".join(demo.text().split())
