"""Discovery (checklist §B, §E): shape, no empty values, portable prefetch templates, switches."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from cds_service.errors import ConfigError
from cds_service.gather.service_definitions import load_definitions

EXPECTED = {
    "psychopharm-patient-view": "patient-view",
    "psychopharm-order-select": "order-select",
    "psychopharm-order-sign": "order-sign",
    "psychopharm-medication-prescribe": "medication-prescribe",
}
# §E item 21: only {{context.<field>}} and the four user*Id tokens.
TOKEN = re.compile(r"\{\{(.*?)\}\}")
ALLOWED_TOKEN = re.compile(
    r"^(context\.[A-Za-z]+|userPractitionerId|userPractitionerRoleId|userPatientId"
    r"|userRelatedPersonId)$"
)
# §E item 22: a read (Type/{{token}}) or a type-level search with name=value parameters.
PORTABLE = re.compile(r"^(?:[A-Z][A-Za-z]+/\{\{[^}]+\}\}|[A-Z][A-Za-z]+\?[^?#/\s]+(?:&[^?#\s]+)*)$")


def _empty_values(value: Any, path: str = "$") -> list[str]:
    if value is None or value in ("", [], {}):
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _empty_values(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _empty_values(v, f"{path}[{i}]")]
    return []


def test_lists_the_four_services_with_required_fields(client: Any) -> None:
    response = client.get("/cds-services")

    assert response.status_code == 200
    services = response.get_json()["services"]
    assert {s["id"]: s["hook"] for s in services} == EXPECTED
    for service in services:
        assert service["description"] and service["title"]
        assert "usageRequirements" in service
    assert _empty_values(response.get_json()) == []


def test_prefetch_templates_use_only_portable_queries_and_allowed_tokens(client: Any) -> None:
    services = client.get("/cds-services").get_json()["services"]

    for service in services:
        prefetch = service["prefetch"]
        assert prefetch["patient"] == "Patient/{{context.patientId}}"
        # All statuses: no status filter, so stopped courses (the history) are included.
        assert prefetch["medications"] == "MedicationRequest?patient={{context.patientId}}"
        assert prefetch["observations"] == (
            "Observation?patient={{context.patientId}}"
            "&code=http://loinc.org|44261-6,http://loinc.org|70274-6"
        )
        for key, template in prefetch.items():
            assert PORTABLE.match(template), key
            tokens = TOKEN.findall(template)
            assert tokens, key
            assert all(ALLOWED_TOKEN.match(t) for t in tokens), (key, tokens)
            assert "context.medication" not in template


@pytest.mark.parametrize("hook", ["order-select", "medication-prescribe"])
def test_switched_off_hook_is_unlisted_and_answers_404(
    make_settings: Callable[..., Any], make_app: Callable[..., Flask], hook: str
) -> None:
    app = make_app(make_settings({"service": {"hooks": {hook: False}}}))
    client = app.test_client()
    service_id = f"psychopharm-{hook}"

    listed = {s["id"] for s in client.get("/cds-services").get_json()["services"]}
    response = client.post(f"/cds-services/{service_id}", json={"hook": hook})

    assert service_id not in listed
    assert len(listed) == 3
    assert response.status_code == 404
    assert response.get_json()["issue"][0]["details"]["coding"][0]["code"] == "unknown-service"


def test_all_services_off_still_answers_an_empty_list(
    make_settings: Callable[..., Any], make_app: Callable[..., Flask]
) -> None:
    hooks = dict.fromkeys(EXPECTED.values(), False)
    client = make_app(make_settings({"service": {"hooks": hooks}})).test_client()

    response = client.get("/cds-services")

    assert response.status_code == 200
    assert response.get_json() == {"services": []}


def test_every_response_names_the_config_version(client: Any, settings: Any) -> None:
    response = client.get("/cds-services")

    assert response.headers["X-Config-Version"] == settings.config_version


def test_a_definition_with_a_non_portable_token_is_rejected_at_startup(tmp_path: Any) -> None:
    path = tmp_path / "services.yaml"
    path.write_text(
        "services:\n"
        "  - id: x\n    hook: patient-view\n    title: X\n    description: D\n"
        "    prefetch:\n      med: 'MedicationRequest/{{context.medication.id}}'\n",
        encoding="utf-8",
    )

    with pytest.raises(ConfigError) as excinfo:
        load_definitions(path)

    assert any("prefetch.med" in p for p in excinfo.value.problems)
