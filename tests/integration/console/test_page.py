"""The console's page in Debian's headless Chromium, driven by Selenium: the map shows the
vehicles, a crash produced on Kafka appears in the open alerts without a reload, and clicking
it shows its explanation. A screenshot is saved with the test output (FLEET_TEST_OUTPUT, by
default build/test-output/)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver

from fleetpipe_dev.browser import chromium
from fleetpipe_dev.testing import produce_all, wait_for
from fleetpipe_loadtest import records
from support.console import TOKEN_ALL, Console
from support.hotstore import HotStoreData, start_writer

pytestmark = pytest.mark.integration

OUTPUT = Path(os.environ.get("FLEET_TEST_OUTPUT", "build/test-output"))


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    with chromium() as chrome:
        yield chrome


def _text(browser: WebDriver, css: str) -> str:
    return str(browser.find_element(By.CSS_SELECTOR, css).text)


def test_the_live_map_its_alerts_and_an_explanation(
    browser: WebDriver, console: Console, hot: HotStoreData, workdir: Path
) -> None:
    browser.get(f"{console.url}/#token={TOKEN_ALL}")
    wait_for(
        lambda: browser.execute_script("return document.body.dataset.loaded") == "true",
        timeout=30,
        interval=0.2,
        what="the page to load the fleet",
    )
    (stored,) = hot.sql("SELECT count(*) FROM vehicle_latest")[0]
    assert _text(browser, "#vehicle-count") == str(stored) == "5"
    drawn = browser.execute_script(
        "return document.querySelectorAll('.marker-cluster').length + "
        "document.querySelectorAll('.leaflet-overlay-pane canvas').length"
    )
    assert drawn >= 1, "clusters or the canvas of single vehicles are on the map"
    assert _text(browser, "#alert-count") == "3"
    browser.execute_script("window.notReloaded = true")

    # A crash, produced on Kafka (and stored by a writer, for its explanation).
    writer = start_writer(hot.kafka, hot.topics, hot.dsn, hot.schema, workdir)
    try:
        crash = records.alert(
            hot.facts.a_vehicles[2], "crash", fleet_id="fleet-a", values={"accel_g": 7.5}
        )
        produce_all(hot.kafka, hot.topics.alerts, [(crash.vehicle_id, crash.SerializeToString())])
        selector = f'#alerts button[data-alert-id="{crash.alert_id}"]'
        wait_for(
            lambda: bool(browser.find_elements(By.CSS_SELECTOR, selector)),
            timeout=10,
            interval=0.1,
            what="the crash in the open alerts",
        )
        assert browser.execute_script("return window.notReloaded") is True, "no reload"
        assert _text(browser, "#alert-count") == "4"

        def stored_crash() -> bool:
            writer.check_alive()
            return bool(hot.sql("SELECT 1 FROM alerts WHERE alert_id = %s", crash.alert_id))

        wait_for(stored_crash, timeout=60, interval=0.2, what="the writer to store the crash")
    finally:
        writer.stop()

    # By keyboard: focus the alert and press Enter.
    button = browser.find_element(By.CSS_SELECTOR, selector)
    button.send_keys(Keys.ENTER)

    def explained() -> bool:
        found = browser.find_elements(By.ID, "explanation")
        return bool(found) and "crash on" in found[0].text

    wait_for(explained, timeout=10, interval=0.1, what="the explanation")
    details = _text(browser, "#details")
    assert "accel_g" in details and "7.5" in details and "OPEN" in details

    OUTPUT.mkdir(parents=True, exist_ok=True)
    shot = OUTPUT / "console.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
