"""The medication timeline in a real browser: headless chromium launches the SMART app.

The app (``create_app``) is served by werkzeug on a loopback port; the EHR (authorization server
and FHIR server, ``smart_ehr.FakeEhr``) by pytest-httpserver on another. The browser opens the EHR
launch URL and follows every redirect itself: to the EHR's /authorize, back to /app/callback
with the code, and on to the timeline, which is read over FHIR with the token. The test then
checks the picture for a 15-ingredient, 5-year history on a 1280x800 screen and keeps a
screenshot. Like the auditor's browser test, it fails (never skips) without chromium.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from flask import Flask
from selenium import webdriver
from selenium.webdriver.common.by import By
from werkzeug.serving import make_server

from cds_service.settings import Settings
from tests.cds_service.timeline.history import expected_lanes, fifteen_ingredient_history
from tests.cds_service.web.smart_ehr import FakeEhr, smart_overrides
from tests.cds_service.web.test_auditor_browser import browser as browser  # noqa: F401
from tests.cds_service.web.test_auditor_browser import png_byte_variety

pytestmark = pytest.mark.browser

PID = "pt-browser-15"
SCREEN = (1280, 800)


def _placeholder(environ: object, start_response: Callable[..., object]) -> list[bytes]:
    start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
    return [b"starting"]


@pytest.fixture
def app_url(
    make_app: Callable[..., Flask], make_settings: Callable[..., Settings], fhir: object
) -> Iterator[tuple[str, FakeEhr]]:
    ehr = FakeEhr(fhir, PID, fifteen_ingredient_history(PID)).install()  # type: ignore[arg-type]
    # The port must be known before the settings (public_base_url is the redirect_uri's base).
    server = make_server("127.0.0.1", 0, _placeholder, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    server.app = make_app(make_settings(smart_overrides(ehr.iss, public_base_url=base)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield base, ehr
    finally:
        server.shutdown()
        thread.join(timeout=5)


def test_a_prescriber_launches_the_timeline_and_sees_every_lane(
    app_url: tuple[str, FakeEhr], browser: webdriver.Chrome, tmp_path: Path  # noqa: F811
) -> None:
    base, ehr = app_url
    # The page's viewport is exactly the screen (no window decorations to guess).
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": SCREEN[0], "height": SCREEN[1], "deviceScaleFactor": 1, "mobile": False,
    })
    browser.get(f"{base}/app/launch?" + urlencode({"iss": ehr.iss, "launch": "ctx-1"}))

    assert browser.current_url == f"{base}/app/", browser.page_source[:500]
    assert len(ehr.token_requests) == 1 and "code_verifier" in ehr.token_requests[0][0]
    browser.find_element(By.ID, "window-all").click()
    assert browser.current_url == f"{base}/app/?window=all"

    svg = browser.find_element(By.ID, "medication-timeline")
    lanes = svg.find_elements(By.CSS_SELECTOR, "g.lane")
    assert [lane.get_attribute("data-ingredient") for lane in lanes] == list(expected_lanes())
    assert len(svg.find_elements(By.CSS_SELECTOR, "g.stop")) == 11
    assert len(svg.find_elements(By.CSS_SELECTOR, "g.score")) == 40
    box = svg.rect
    # The whole picture is on a 1280x800 screen without scrolling, and lanes are not squashed.
    assert box["width"] >= 1100 and box["x"] + box["width"] <= SCREEN[0]
    assert box["y"] + box["height"] <= SCREEN[1]
    assert all(lane.rect["height"] >= 14 for lane in lanes)
    visible = browser.find_element(By.TAG_NAME, "body").text
    assert "Whole history" in visible and "side effects" in visible

    screenshot = browser.get_screenshot_as_png()
    (tmp_path / "timeline.png").write_bytes(screenshot)
    assert len(screenshot) > 20_000
    assert png_byte_variety(screenshot) > 32, "the screenshot is blank"
