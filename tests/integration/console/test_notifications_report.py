"""The console's notifications report separates the drivers' deliveries from the operations
recipients' and the webhook sinks', in the API and on the page (Debian's headless Chromium):
an operations desk's SMS are never counted as a driver's. The ledger rows beyond the drivers
are written by notification's own ledger, beside the drivers' rows of the hot store."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from fleetpipe.notification.ledger import Entry, Ledger, Status
from fleetpipe.notification.routing import Channel, Phase
from fleetpipe_dev.browser import chromium
from fleetpipe_dev.testing import wait_for
from support.console import TOKEN_A, TOKEN_ALL, Console
from support.hotstore import HotStoreData

pytestmark = pytest.mark.integration

OUTPUT = Path(os.environ.get("FLEET_TEST_OUTPUT", "build/test-output"))

# (the alert's rule and fleet, recipient, channel, status, error code)
BEYOND_DRIVERS = [
    ("speeding", "fleet-a", "ops:night_desk", Channel.SMS, Status.SENT, ""),
    ("speeding", "fleet-a", "webhook:dispatch", Channel.WEBHOOK, Status.SENT, ""),
    ("crash", "fleet-a", "ops:night_desk", Channel.SMS, Status.SENT, ""),
    ("crash", "fleet-a", "ops:night_desk", Channel.VOICE, Status.SENT, ""),
    ("crash", "fleet-a", "ops:day_desk", Channel.SMS, Status.FAILED, "21610"),
    ("crash", "fleet-a", "webhook:dispatch", Channel.WEBHOOK, Status.FAILED, "503"),
    ("speeding", "fleet-b", "ops:b_desk", Channel.SMS, Status.SENT, ""),
    ("speeding", "fleet-b", "webhook:b_hook", Channel.WEBHOOK, Status.SENT, ""),
]


@pytest.fixture(scope="module")
def beyond_drivers(hot: HotStoreData) -> HotStoreData:
    """The hot store's driver deliveries (speeding and crash in fleet-a, speeding in fleet-b)
    and, for the same alerts, operations and webhook deliveries."""
    drivers = hot.sql(
        "SELECT a.rule, a.fleet_id, n.alert_id, n.vehicle_id, n.driver_id, "
        "(extract(epoch FROM n.alert_time) * 1e6)::bigint "
        "FROM notification_ledger n JOIN alerts a USING (alert_id) "
        "WHERE n.recipient = 'driver' AND n.channel = 'sms'"
    )
    alerts = {(str(r[0]), str(r[1])): r[2:] for r in drivers}
    assert set(alerts) == {("speeding", "fleet-a"), ("crash", "fleet-a"), ("speeding", "fleet-b")}
    ledger = Ledger(hot.settings, application_name="test-ledger")
    try:
        for rule, fleet, recipient, channel, status, error in BEYOND_DRIVERS:
            alert_id, vehicle, driver, alert_time_us = alerts[(rule, fleet)]
            entry = Entry(
                alert_id=str(alert_id),
                phase=Phase.OPEN,
                channel=channel,
                status=Status.PENDING,
                vehicle_id=str(vehicle),
                driver_id=str(driver),
                driver_key=recipient,
                rule=rule,
                severity="critical" if rule == "crash" else "warning",
                to_address="http://127.0.0.1" if channel is Channel.WEBHOOK else "+14155550100",
                from_address="+15550002222",
                reference=f"{alert_id}/{recipient}/{channel.value}",
                alert_time_us=int(str(alert_time_us)),
                recipient=recipient,
            )
            ledger.record([entry])
            ledger.settle(entry.settled(status, error_code=error, attempts=1))
    finally:
        ledger.close()
    return hot


def _report(console: Console, token: str) -> dict[tuple[str, str, str], tuple[int, int]]:
    with console.client(token) as client:
        answer = client.get("/api/v1/notifications")
    assert answer.status_code == 200, answer.text
    rows = answer.json()
    kinds = [r["recipient_kind"] for r in rows]
    assert kinds == sorted(kinds), "drivers first, then operations, then webhooks"
    return {
        (r["recipient_kind"], r["channel"], r["status"]): (r["deliveries"], r["recipients"])
        for r in rows
    }


def test_the_report_counts_each_kind_of_recipient_apart(
    console: Console, beyond_drivers: HotStoreData
) -> None:
    assert _report(console, TOKEN_ALL) == {
        ("driver", "sms", "SENT"): (3, 1),
        ("driver", "voice", "FAILED"): (1, 1),
        ("operations", "sms", "FAILED"): (1, 1),
        ("operations", "sms", "SENT"): (3, 2),
        ("operations", "voice", "SENT"): (1, 1),
        ("webhook", "webhook", "FAILED"): (1, 1),
        ("webhook", "webhook", "SENT"): (2, 2),
    }
    # A fleet's token: its own fleet's deliveries of every kind, none of fleet-b's desk or sink.
    assert _report(console, TOKEN_A) == {
        ("driver", "sms", "SENT"): (2, 1),
        ("driver", "voice", "FAILED"): (1, 1),
        ("operations", "sms", "FAILED"): (1, 1),
        ("operations", "sms", "SENT"): (2, 1),
        ("operations", "voice", "SENT"): (1, 1),
        ("webhook", "webhook", "FAILED"): (1, 1),
        ("webhook", "webhook", "SENT"): (1, 1),
    }


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    with chromium() as chrome:
        yield chrome


def test_the_page_shows_drivers_operations_and_webhooks_in_sections_of_their_own(
    browser: WebDriver, console: Console, beyond_drivers: HotStoreData
) -> None:
    browser.get(f"{console.url}/#token={TOKEN_ALL}")
    wait_for(
        lambda: browser.execute_script("return document.body.dataset.loaded") == "true",
        timeout=30,
        interval=0.2,
        what="the page to load the fleet",
    )
    browser.find_element(By.CSS_SELECTOR, 'nav .tab[data-page="notifications"]').click()

    def sections() -> dict[str, list[list[str]]] | None:
        found = browser.find_elements(By.CSS_SELECTOR, "#page-notifications section.recipients")
        if len(found) < 3:
            return None
        return {
            str(s.get_attribute("data-recipient-kind")): [
                [td.text for td in tr.find_elements(By.TAG_NAME, "td")[:3]]
                for tr in s.find_elements(By.CSS_SELECTOR, "tbody tr")
            ]
            for s in found
        }

    shown = wait_for(sections, timeout=15, interval=0.2, what="the notifications report")
    assert shown == {
        "driver": [["sms", "SENT", "3"], ["voice", "FAILED", "1"]],
        "operations": [["sms", "FAILED", "1"], ["sms", "SENT", "3"], ["voice", "SENT", "1"]],
        "webhook": [["webhook", "FAILED", "1"], ["webhook", "SENT", "2"]],
    }
    titles = [
        h.text for h in browser.find_elements(By.CSS_SELECTOR, "#page-notifications section h3")
    ]
    assert titles == [
        "Drivers — 4 deliveries, 3 sent",
        "Operations recipients — 5 deliveries, 4 sent",
        "Webhook sinks — 3 deliveries, 2 sent",
    ]
    OUTPUT.mkdir(parents=True, exist_ok=True)
    shot = OUTPUT / "console-notifications.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 5_000
