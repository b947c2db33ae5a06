"""Prefetch token resolution (CDS Hooks 2.0 §Prefetch tokens) against real hook contexts."""

from __future__ import annotations

import pytest

from cds_service.gather.prefetch_templates import (
    is_portable,
    resolve_template,
    template_tokens,
    user_ids_from_context,
)

# What the sandbox sends at order-sign: no encounterId (optional in order hooks).
ORDER_SIGN_CONTEXT = {
    "userId": "Practitioner/COREPRACTITIONER1",
    "patientId": "pat1",
    "draftOrders": {"resourceType": "Bundle", "entry": []},
}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("Patient/{{context.patientId}}", "Patient/pat1"),
        (
            "MedicationRequest?patient={{context.patientId}}&_count=100",
            "MedicationRequest?patient=pat1&_count=100",
        ),
        ("Practitioner/{{userPractitionerId}}", "Practitioner/COREPRACTITIONER1"),
        (
            "Observation?patient={{ context.patientId }}&code=44261-6",
            "Observation?patient=pat1&code=44261-6",
        ),
        ("Patient?_id={{context.patientId}}", "Patient?_id=pat1"),
        ("Encounter/{{context.encounterId}}", None),
        ("PractitionerRole/{{userPractitionerRoleId}}", None),
        ("Patient/{{context.draftOrders}}", None),
        ("Medication/{{context.medication.id}}", None),
        ("Observation?date=ge{{today() - 90 days}}", None),
        ("metadata", "metadata"),
    ],
    ids=[
        "patient-read",
        "patient-search",
        "user-practitioner",
        "spaces-inside-braces",
        "search-by-id",
        "encounterId-absent",
        "userId-is-not-a-role",
        "non-primitive-field",
        "nested-field",
        "fhirpath-token",
        "no-tokens",
    ],
)
def test_resolve_against_order_sign_context(template: str, expected: str | None) -> None:
    assert resolve_template(template, ORDER_SIGN_CONTEXT) == expected


def test_encounter_token_resolves_when_the_hook_carries_it() -> None:
    context = {**ORDER_SIGN_CONTEXT, "encounterId": "enc-89284"}
    assert resolve_template("Encounter/{{context.encounterId}}", context) == "Encounter/enc-89284"


@pytest.mark.parametrize(
    "patient_id",
    [
        "pat1&patient=pat2",  # a second search parameter
        "pat1?_format=xml",
        "pat1#fragment",
        "../Group/all",  # another resource
        "..",
        ".",
        "",
    ],
)
def test_values_that_would_reshape_the_query_are_rejected(patient_id: str) -> None:
    context = {**ORDER_SIGN_CONTEXT, "patientId": patient_id}
    assert resolve_template("MedicationRequest?patient={{context.patientId}}", context) is None


def test_other_characters_are_url_encoded() -> None:
    context = {**ORDER_SIGN_CONTEXT, "patientId": "a b+c=d%"}
    assert resolve_template("Patient?_id={{context.patientId}}", context) == (
        "Patient?_id=a%20b%2Bc%3Dd%25"
    )


def test_numeric_context_values_are_substituted_but_booleans_are_not() -> None:
    assert resolve_template("Patient/{{context.patientId}}", {"patientId": 42}) == "Patient/42"
    assert resolve_template("Patient/{{context.patientId}}", {"patientId": True}) is None


@pytest.mark.parametrize(
    ("user_id", "expected"),
    [
        ("Practitioner/123", {"userPractitionerId": "123"}),
        ("PractitionerRole/r-9", {"userPractitionerRoleId": "r-9"}),
        ("Patient/p-7", {"userPatientId": "p-7"}),
        ("RelatedPerson/rp1", {"userRelatedPersonId": "rp1"}),
        ("https://ehr.example.org/fhir/Practitioner/123", {"userPractitionerId": "123"}),
        ("Practitioner/123/_history/4", {"userPractitionerId": "123"}),
        ("Device/d1", {}),
        ("123", {}),
    ],
)
def test_user_tokens_come_from_context_user_id(user_id: str, expected: dict[str, str]) -> None:
    assert user_ids_from_context({"userId": user_id}) == expected


def test_explicit_user_ids_override_context() -> None:
    resolved = resolve_template(
        "PractitionerRole/{{userPractitionerRoleId}}",
        ORDER_SIGN_CONTEXT,
        user_ids={"userPractitionerRoleId": "role-5"},
    )
    assert resolved == "PractitionerRole/role-5"


def test_template_tokens() -> None:
    template = "MedicationRequest?patient={{context.patientId}}&requester={{userPractitionerId}}"
    assert template_tokens(template) == {"context.patientId", "userPractitionerId"}


@pytest.mark.parametrize(
    ("template", "portable"),
    [
        ("Patient/{{context.patientId}}", True),
        ("MedicationDispense?patient={{context.patientId}}&_count=100", True),
        ("Practitioner/{{userPractitionerId}}", True),
        ("Medication/{{context.medication.id}}", False),
        ("Observation?date=ge{{today()}}", False),
        ("Patient/{{patientId}}", False),
        ("Patient/{{context.patientId}", False),
    ],
)
def test_is_portable(template: str, portable: bool) -> None:
    assert is_portable(template) is portable
