"""context.patientId / encounterId are FHIR ids, normalised once; stored strings fit the audit.

``Patient/<id>`` (``Encounter/<id>``) is the same resource written as a relative reference: it is
taken as the bare id, in ``HookRequest`` and in the context the prefetch templates are filled
from. Anything that is not an R4 id after that is a 400 naming the field, never the value.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from cds_service.errors import RequestError
from cds_service.gather.hook_request import MAX_LENGTHS, HookRequest, parse_hook_request
from cds_service.gather.prefetch_templates import resolve_template
from cds_service.storage.audit.models import CARD, max_lengths

ID64 = "a" * 64


@pytest.fixture
def view_body(load_fixture: Callable[[str], Any]) -> dict[str, Any]:
    body: dict[str, Any] = load_fixture("requests/patient-view-sandbox.json")
    return body


def _parse(body: dict[str, Any], hook: str = "patient-view") -> HookRequest:
    return parse_hook_request(body, f"psychopharm-{hook}", hook)


def _refusal(body: dict[str, Any]) -> RequestError:
    with pytest.raises(RequestError) as excinfo:
        _parse(body)
    return excinfo.value


@pytest.mark.parametrize(
    ("sent", "bare"),
    [
        pytest.param("pat1", "pat1", id="bare"),
        pytest.param("Patient/pat1", "pat1", id="relative-reference"),
        pytest.param("A-b.9", "A-b.9", id="all-id-characters"),
        pytest.param(ID64, ID64, id="64-characters"),
        pytest.param(f"Patient/{ID64}", ID64, id="64-characters-prefixed"),
        pytest.param("Patient/...", "...", id="three-dots-is-an-id"),
    ],
)
def test_patient_id_is_the_bare_fhir_id_everywhere(
    view_body: dict[str, Any], sent: str, bare: str
) -> None:
    view_body["context"]["patientId"] = sent

    req = _parse(view_body)

    assert req.patient_id == bare
    assert req.context["patientId"] == bare
    assert resolve_template("Patient/{{context.patientId}}", req.context) == f"Patient/{bare}"
    # The caller's body is left as it was sent.
    assert view_body["context"]["patientId"] == sent


@pytest.mark.parametrize(
    "sent",
    [
        pytest.param("Patient/Patient/pat1", id="prefixed-twice"),
        pytest.param("Patient/pat1/_history/2", id="versioned-reference"),
        pytest.param("https://ehr.example.org/fhir/Patient/pat1", id="absolute-url"),
        pytest.param("pat1?_id=pat2", id="query-character"),
        pytest.param("pat1&x=1", id="ampersand"),
        pytest.param("pat1#frag", id="fragment"),
        pytest.param("pat 1", id="space"),
        pytest.param("pat_1", id="underscore"),
        pytest.param("pät1", id="non-ascii-letter"),
        pytest.param("pat1\n", id="trailing-newline"),
        pytest.param("a" * 65, id="65-characters"),
        pytest.param("Patient/" + "a" * 65, id="65-characters-prefixed"),
        pytest.param("Patient/", id="prefix-only"),
        pytest.param(".", id="dot-segment"),
        pytest.param("Patient/..", id="dot-dot-segment"),
        pytest.param("Practitioner/pat1", id="other-resource-type"),
        pytest.param("patient/pat1", id="lower-case-type"),
    ],
)
def test_patient_id_that_is_no_fhir_id_is_refused_by_name(
    view_body: dict[str, Any], sent: str
) -> None:
    view_body["context"]["patientId"] = sent

    error = _refusal(view_body)

    assert (error.status, error.code) == (400, "invalid-field")
    assert error.message.startswith("context.patientId must be the Patient id")
    assert "'Patient/<id>'" in error.message
    # One text whatever was sent: the value (possibly PHI) is never echoed.
    view_body["context"]["patientId"] = "other?value"
    assert _refusal(view_body).message == error.message


@pytest.mark.parametrize(
    ("sent", "bare"),
    [("enc-7", "enc-7"), ("Encounter/enc-7", "enc-7")],
)
def test_encounter_id_is_normalised_like_the_patient_id(
    view_body: dict[str, Any], sent: str, bare: str
) -> None:
    view_body["context"]["encounterId"] = sent

    req = _parse(view_body)

    assert (req.encounter_id, req.context["encounterId"]) == (bare, bare)


@pytest.mark.parametrize(
    "sent", ["Patient/enc-7", "Encounter/Encounter/enc-7", "enc-7?x", "e" * 65]
)
def test_encounter_id_that_is_no_fhir_id_is_refused_by_name(
    view_body: dict[str, Any], sent: str
) -> None:
    view_body["context"]["encounterId"] = sent

    error = _refusal(view_body)

    assert error.code == "invalid-field"
    assert error.message.startswith("context.encounterId must be the Encounter id")


def test_no_encounter_id_stays_none(view_body: dict[str, Any]) -> None:
    view_body["context"].pop("encounterId", None)

    req = _parse(view_body)

    assert req.encounter_id is None and "encounterId" not in req.context


def test_user_id_up_to_the_audit_column_is_accepted(view_body: dict[str, Any]) -> None:
    user = "Practitioner/" + "p" * (MAX_LENGTHS["context.userId"] - len("Practitioner/"))
    view_body["context"]["userId"] = user

    assert _parse(view_body).user_id == user


def test_user_id_longer_than_the_audit_column_is_refused(view_body: dict[str, Any]) -> None:
    view_body["context"]["userId"] = "Practitioner/" + "p" * 300

    error = _refusal(view_body)

    assert error.code == "invalid-field"
    assert error.message.startswith("context.userId must be at most 256 characters")


def test_hook_instance_up_to_the_audit_column_is_accepted(view_body: dict[str, Any]) -> None:
    view_body["hookInstance"] = "h" * 128

    assert _parse(view_body).hook_instance == "h" * 128


def test_request_limits_are_the_audit_columns() -> None:
    # gather may not import storage: this is what keeps the two in step.
    columns = max_lengths(CARD)

    assert MAX_LENGTHS == {
        "hookInstance": columns["hook_instance"],
        "context.userId": columns["practitioner"],
    }
