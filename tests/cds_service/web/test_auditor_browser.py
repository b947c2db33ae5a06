"""The auditor page in a real browser: headless Debian chromium driven by selenium.

The real app (``create_app``) is served by werkzeug on a free loopback port in a thread, over a
seeded SQLite store. The browser logs in the way an auditor would, with HTTP Basic credentials in
the URL (any user name, the auditor token as password), then reads the page, applies a filter
through the URL and takes a screenshot. chromium and chromedriver come from apt (the project's
test script installs them); without them this test fails rather than skips, so a missing browser
is never mistaken for a passing view.
"""

from __future__ import annotations

import shutil
import struct
import threading
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from werkzeug.serving import make_server

from cds_service.settings import Settings
from tests.cds_service.web.test_auditor import (
    SUMMARIES,
    TOKEN,
    auditor_settings,
    seed_audit_log,
)

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
MISSING = (
    "chromium and chromedriver are required at /usr/bin/chromium and /usr/bin/chromedriver; the "
    "project's test script installs them (apt-get install -y chromium chromium-driver)"
)


@pytest.fixture
def base_url(
    make_app: Callable[..., Flask], make_settings: Callable[..., Settings]
) -> Iterator[str]:
    app = make_app(auditor_settings(make_settings))
    seed_audit_log(app.extensions["psychopharm"].audit)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://auditor:{TOKEN}@127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    if not (Path(CHROMIUM).exists() and shutil.which(CHROMEDRIVER)):
        pytest.fail(MISSING)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run",
        "--disable-dev-shm-usage", "--window-size=1280,1800",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(10)
    try:
        yield driver
    finally:
        driver.quit()


def png_byte_variety(png: bytes) -> int:
    """How many distinct byte values the decoded pixel rows hold (1-2 for a blank image)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    offset, idat = 8, b""
    while offset < len(png):
        (length,) = struct.unpack(">I", png[offset:offset + 4])
        kind = png[offset + 4:offset + 8]
        if kind == b"IDAT":
            idat += png[offset + 8:offset + 8 + length]
        offset += 12 + length
    return len(set(zlib.decompress(idat)))


def card_rows(driver: webdriver.Chrome) -> list[str]:
    return [
        row.get_attribute("data-pattern") or ""
        for row in driver.find_elements(By.CSS_SELECTOR, "#card-table tr.card-row")
    ]


def test_an_auditor_reads_filters_and_screenshots_the_page(
    base_url: str, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    browser.get(f"{base_url}/auditor/")

    assert browser.find_element(By.TAG_NAME, "h1").text == "Cards and feedback"
    assert browser.find_element(By.CSS_SELECTOR, "#tile-total .value").text == "8"
    assert browser.find_element(By.CSS_SELECTOR, "#tile-shown .value").text == "4"
    assert browser.find_element(By.CSS_SELECTOR, "#tile-override .value").text == "75%"
    summary = browser.find_element(By.XPATH, "//span[@class='summary'][1]")
    assert summary.is_displayed()
    body = browser.find_element(By.TAG_NAME, "body").text
    assert SUMMARIES["psychotropic-polypharmacy"] in body
    assert "Already discussed with the patient" in body
    assert len(card_rows(browser)) == 8

    chart = browser.find_element(By.ID, "weekly-chart")
    assert chart.size["width"] > 0 and chart.size["height"] > 0
    assert len(chart.find_elements(By.CSS_SELECTOR, "g.series")) == 2 * len(SUMMARIES)

    screenshot = browser.get_screenshot_as_png()
    (tmp_path / "auditor.png").write_bytes(screenshot)
    assert len(screenshot) > 10_000
    assert png_byte_variety(screenshot) > 32, "the screenshot is blank"

    browser.get(f"{base_url}/auditor/?disposition=silent")
    assert sorted(card_rows(browser)) == ["nonadherence", "psychotropic-polypharmacy"]
    assert browser.find_element(By.CSS_SELECTOR, "#tile-total .value").text == "2"
    selected = browser.find_element(By.CSS_SELECTOR, "select[name=disposition] option:checked")
    assert selected.text == "silent"
