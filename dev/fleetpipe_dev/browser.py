"""Debian's headless Chromium driven by Selenium: the console's page tests and its benchmark."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver


@contextmanager
def chromium(*, width: int = 1400, height: int = 900) -> Iterator[WebDriver]:
    """A headless Chromium, quit on leaving. Selenium is imported here: only the page tests and
    the console's benchmark drive a browser."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    # A missing browser is a setup error (scripts/setup.sh installs both), never a skip.
    assert browser and driver, "Debian's chromium and chromium-driver are needed: scripts/setup.sh"
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in (
        "--headless=new",
        "--no-sandbox",  # tests run as root in CI
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={width},{height}",
    ):
        options.add_argument(flag)
    chrome = webdriver.Chrome(options=options, service=Service(executable_path=driver))
    try:
        yield chrome
    finally:
        chrome.quit()
