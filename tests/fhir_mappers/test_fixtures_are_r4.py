"""The fixtures are real FHIR (R4B, or STU3 for the legacy hook), except the quirky ones."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.STU3.bundle import Bundle as STU3Bundle
from pydantic import ValidationError


def test_patient_bundle_is_valid_r4(load_fixture: Callable[[str], Any]) -> None:
    bundle = Bundle.model_validate(load_fixture("patient-bundle.json"))
    assert bundle.entry is not None and len(bundle.entry) > 30


def test_sandbox_draft_orders_are_not_strict_r4(load_fixture: Callable[[str], Any]) -> None:
    # Why the mapper reads plain dicts: the reference client's own payload fails strict parsing.
    draft_orders = load_fixture("sandbox-order-sign.json")["context"]["draftOrders"]
    with pytest.raises(ValidationError, match="category"):
        Bundle.model_validate(draft_orders)
    order = draft_orders["entry"][0]["resource"]
    order["category"] = [order["category"]]
    with pytest.raises(ValidationError, match="type"):
        Bundle.model_validate(draft_orders)
    draft_orders["type"] = "collection"
    Bundle.model_validate(draft_orders)  # nothing else is wrong with it


def test_medication_prescribe_fixture_is_valid_stu3(load_fixture: Callable[[str], Any]) -> None:
    medications = load_fixture("medication-prescribe-stu3.json")["context"]["medications"]
    STU3Bundle.model_validate(medications)
