"""The auditor's timeline for one card: the card's evidence outlined on the patient's history."""

from __future__ import annotations

import io
import json
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from cds_service.settings import Settings
from tests.audit_support import card
from tests.cds_service.timeline.history import fifteen_ingredient_history
from tests.cds_service.web.test_auditor import BEARER, auditor_settings

UUID = "7b1f6c0e-2a4d-4f57-9a51-1c2e0d9b7a11"
EVIDENCE = ("AllergyIntolerance/ai-sertraline", "AllergyIntolerance/ai-lithium",
            "MedicationRequest/mr-escitalopram-1")


@pytest.fixture
def client(make_app: Callable[..., Flask], make_settings: Callable[..., Settings]) -> FlaskClient:
    app = make_app(auditor_settings(make_settings))
    audit = app.extensions["psychopharm"].audit
    audit.record_cards([card(card_uuid=UUID, evidence_refs=EVIDENCE)])
    audit.flush()
    return app.test_client()


def bundle_file() -> tuple[io.BytesIO, str]:
    bundle = {"resourceType": "Bundle", "type": "collection",
              "entry": [{"resource": r} for r in fifteen_ingredient_history()]}
    return io.BytesIO(json.dumps(bundle).encode()), "patient.json"


def test_the_card_list_links_to_each_cards_timeline(client: FlaskClient) -> None:
    page = client.get("/auditor/", headers=BEARER).text
    assert f'href="/auditor/cards/{UUID}/timeline"' in page


def test_the_page_shows_the_card_and_asks_for_the_history(client: FlaskClient) -> None:
    page = client.get(f"/auditor/cards/{UUID}/timeline", headers=BEARER)
    assert page.status_code == 200
    assert "repeated-intolerance" in page.text and "AllergyIntolerance/ai-lithium" in page.text
    assert 'enctype="multipart/form-data"' in page.text
    assert "<svg" not in page.text
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]


def test_a_loaded_history_is_drawn_with_the_cards_evidence_outlined(client: FlaskClient) -> None:
    response = client.post(
        f"/auditor/cards/{UUID}/timeline", headers=BEARER,
        data={"bundle": bundle_file(), "window": "all"}, content_type="multipart/form-data",
    )
    assert response.status_code == 200
    html = response.text
    assert html.count('<g class="lane') == 15
    assert "3 of the card's 3 evidence records found" in html
    assert 'class="reaction evidence" data-ref="AllergyIntolerance/ai-sertraline"' in html
    assert 'class="course evidence" data-ref="MedicationRequest/mr-escitalopram-1"' in html


def test_the_page_needs_the_auditor_token(client: FlaskClient) -> None:
    assert client.get(f"/auditor/cards/{UUID}/timeline").status_code == 401
    response = client.post(f"/auditor/cards/{UUID}/timeline",
                           data={"bundle": bundle_file()}, content_type="multipart/form-data")
    assert response.status_code == 401 and "<svg" not in response.text


def test_an_unknown_card_is_a_404_page(client: FlaskClient) -> None:
    response = client.get("/auditor/cards/no-such-card/timeline", headers=BEARER)
    assert response.status_code == 404 and "No card has this uuid" in response.text


@pytest.mark.parametrize("data, message", [
    ({}, "Choose the patient"),
    ({"bundle": (io.BytesIO(b"<html>not json"), "x.json")}, "not valid JSON"),
])
def test_a_missing_or_broken_file_is_a_400_page(
    client: FlaskClient, data: dict[str, object], message: str
) -> None:
    response = client.post(f"/auditor/cards/{UUID}/timeline", headers=BEARER, data=data,
                           content_type="multipart/form-data")
    assert response.status_code == 400 and message in response.text
