"""``GET /openapi.json``: an OpenAPI 3.0 description of the service, built from the definitions.

CDS Hooks 2.0 publishes no schema of its own (the Swagger model was removed in 2019), so this is
ours: one concrete path per enabled service with that hook's context, so that property-based
testing (schemathesis) generates requests the service should accept and checks every documented
status. It is generated from the same tables the validators use (hook_request.CONTEXT_FIELDS,
ID_FIELDS and MAX_LENGTHS; the feedback columns' lengths, feedback.STORED_LENGTHS).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, current_app, jsonify

from cds_service import __version__
from cds_service.gather.hook_request import (
    CONTEXT_FIELDS,
    FHIR_ID_PATTERN,
    ID_FIELDS,
    MAX_LENGTHS,
)
from cds_service.gather.service_definitions import ServiceDefinition
from cds_service.web.feedback import STORED_LENGTHS

bp = Blueprint("openapi", __name__)

_TEXT = {"type": "string", "minLength": 1, "pattern": "\\S"}
_NO_CONTROL_CHARS = {"type": "string", "pattern": "^[^\\x00-\\x1f\\x7f]*$"}
_RFC3339 = "^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d+)?(Z|[+-]\\d{2}:\\d{2})$"
_KIND = {
    "string": _TEXT,
    "object": {"type": "object"},
    "array of strings": {"type": "array", "minItems": 1, "items": _TEXT},
}
_REF = "#/components/schemas/"
_ERRORS = {
    "400": "Malformed JSON or a request that does not match the hook's contract",
    "401": "A valid client JWT is required (when the site requires one)",
    "404": "Unknown or disabled service",
    "413": "Body larger than service.max_body_bytes",
    "415": "Content-Type is not JSON",
}

_COMPONENTS: dict[str, Any] = {
    "OperationOutcome": {
        "type": "object",
        "required": ["resourceType", "issue"],
        "properties": {
            "resourceType": {"type": "string", "enum": ["OperationOutcome"]},
            "issue": {"type": "array", "minItems": 1, "items": {
                "type": "object",
                "required": ["severity", "code", "details"],
                "properties": {
                    "severity": {"type": "string", "enum": ["error"]},
                    "code": {"type": "string"},
                    "details": {"type": "object", "properties": {
                        "coding": {"type": "array", "items": {"type": "object"}},
                        "text": {"type": "string"},
                    }},
                },
            }},
        },
    },
    "Card": {
        "type": "object",
        "required": ["uuid", "summary", "indicator", "source"],
        "properties": {
            "uuid": {"type": "string"},
            "summary": {"type": "string", "maxLength": 139},
            "detail": {"type": "string"},
            "indicator": {"type": "string", "enum": ["info", "warning"]},
            "source": {"type": "object", "required": ["label"]},
            "suggestions": {"type": "array", "minItems": 1, "items": {"type": "object"}},
            "selectionBehavior": {"type": "string", "enum": ["at-most-one", "any"]},
            "overrideReasons": {"type": "array", "minItems": 1, "items": {"type": "object"}},
            "links": {"type": "array", "minItems": 1, "items": {"type": "object"}},
        },
    },
    "FhirAuthorization": {
        "type": "object",
        "required": ["access_token", "token_type", "expires_in", "scope", "subject"],
        "properties": {
            "access_token": _TEXT,
            "token_type": {"type": "string", "enum": ["Bearer"]},
            "expires_in": {"type": "integer"},
            "scope": _TEXT,
            "subject": _TEXT,
            "patient": {"type": "string"},
        },
    },
    "Feedback": {
        "type": "object",
        "required": ["card", "outcome", "outcomeTimestamp"],
        "properties": {
            "card": {**_TEXT, "maxLength": STORED_LENGTHS["card_uuid"]},
            "outcome": {"type": "string", "enum": ["accepted", "overridden"]},
            "acceptedSuggestions": {"type": "array", "minItems": 1, "items": {
                "type": "object", "required": ["id"], "properties": {"id": _TEXT},
            }},
            "overrideReason": {
                "type": "object",
                "nullable": True,
                "properties": {
                    "reason": {"type": "object", "required": ["code", "system"], "properties": {
                        "code": {**_TEXT, "maxLength": STORED_LENGTHS["override_code"]},
                        "system": {**_TEXT, "maxLength": STORED_LENGTHS["override_system"]},
                        "display": {"type": "string", "nullable": True},
                    }},
                    "userComment": {"type": "string", "nullable": True},
                },
                "anyOf": [
                    {"required": ["reason"]},
                    {"required": ["userComment"],
                     "properties": {"userComment": {"type": "string"}}},
                ],
            },
            "outcomeTimestamp": {
                "type": "string",
                "format": "date-time",
                "pattern": _RFC3339,
            },
        },
        # Accepted feedback must say which suggestions were taken (spec invariant cds-fb-2).
        "oneOf": [
            {"properties": {"outcome": {"enum": ["accepted"]}},
             "required": ["acceptedSuggestions"]},
            {"properties": {"outcome": {"enum": ["overridden"]}}},
        ],
    },
}


def _json(schema: Mapping[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": dict(schema)}}}


def _responses(ok: str, ok_schema: Mapping[str, Any], extra: Mapping[str, str]) -> dict[str, Any]:
    responses: dict[str, Any] = {"200": {"description": ok, **_json(ok_schema)}}
    for status, text in {**_ERRORS, **extra}.items():
        responses[status] = {"description": text, **_json({"$ref": _REF + "OperationOutcome"})}
    return responses


def _fhir_id(name: str) -> dict[str, Any]:
    """The schema of ``context.<name>``, a key of ``ID_FIELDS``: the id, or "<type>/<id>"."""
    resource_type = ID_FIELDS[name]
    return {
        "type": "string",
        "pattern": f"^({resource_type}/)?{FHIR_ID_PATTERN}$",
        # URL dot-segments, though the id pattern lets them through (hook_request.bare_id).
        "not": {"enum": [f"{prefix}{dots}" for prefix in ("", f"{resource_type}/")
                         for dots in (".", "..")]},
        "description": f"The {resource_type} id; '{resource_type}/<id>' is read as <id>",
    }


def _hook_request(definition: ServiceDefinition) -> dict[str, Any]:
    fields = CONTEXT_FIELDS[definition.hook]
    return {
        "type": "object",
        # `prefetch.medications` is documented as required: without it the service must fetch the
        # medications from an allow-listed fhirServer, and answers 412 when it cannot.
        "required": ["hook", "hookInstance", "context", "prefetch"],
        "properties": {
            "hook": {"type": "string", "enum": [definition.hook]},
            "hookInstance": {"allOf": [
                {**_TEXT, "maxLength": MAX_LENGTHS["hookInstance"]}, _NO_CONTROL_CHARS,
            ]},
            "fhirServer": {"type": "string", "pattern": "^https?://"},
            "fhirAuthorization": {"$ref": _REF + "FhirAuthorization"},
            "context": {
                "type": "object",
                "required": list(fields),
                "properties": {
                    **{name: _KIND[kind] for name, kind in fields.items()},
                    "userId": {**_TEXT, "maxLength": MAX_LENGTHS["context.userId"]},
                    **{name: _fhir_id(name) for name in ID_FIELDS},
                },
            },
            "prefetch": {
                "type": "object",
                "required": ["medications"],
                "properties": {"medications": {
                    "type": "object",
                    "nullable": True,
                    "required": ["resourceType"],
                    "properties": {"resourceType": {"type": "string", "enum": ["Bundle"]}},
                }},
            },
        },
        # fhirServer is required when fhirAuthorization is present (spec: CONDITIONAL).
        "anyOf": [{"not": {"required": ["fhirAuthorization"]}}, {"required": ["fhirServer"]}],
    }


def _paths(definitions: Mapping[str, ServiceDefinition]) -> dict[str, Any]:
    paths: dict[str, Any] = {
        "/cds-services": {"get": {
            "summary": "CDS Hooks discovery",
            "responses": {"200": {"description": "The enabled services", **_json({
                "type": "object", "required": ["services"],
                "properties": {"services": {"type": "array", "items": {"type": "object"}}},
            })}},
        }},
    }
    for sid, definition in definitions.items():
        paths[f"/cds-services/{sid}"] = {"post": {
            "summary": definition.title,
            "requestBody": {"required": True, **_json(_hook_request(definition))},
            "responses": _responses("Advisory cards", {
                "type": "object", "required": ["cards"],
                "properties": {"cards": {"type": "array", "items": {"$ref": _REF + "Card"}}},
            }, {"412": "Required data missing and not fetchable from fhirServer"}),
        }}
        paths[f"/cds-services/{sid}/feedback"] = {"post": {
            "summary": f"Feedback on cards of {sid}",
            "requestBody": {"required": True, **_json({
                "type": "object", "required": ["feedback"],
                "properties": {"feedback": {"type": "array", "minItems": 1, "maxItems": 1000,
                                            "items": {"$ref": _REF + "Feedback"}}},
            })},
            "responses": _responses("Stored", {
                "type": "object", "required": ["stored"],
                "properties": {"stored": {"type": "integer", "minimum": 0}},
            }, {}),
        }}
    paths["/healthz"] = {"get": {"summary": "Liveness", "responses": {
        "200": {"description": "The process is alive", **_json({"type": "object"})}}}}
    paths["/readyz"] = {"get": {"summary": "Readiness", "responses": {
        "200": {"description": "Ready", **_json({"type": "object"})},
        "503": {"description": "Not ready (audit database unreachable)",
                **_json({"type": "object"})}}}}
    paths["/admin/config"] = {"get": {
        "summary": "The merged configuration, secrets masked",
        "security": [{"adminToken": []}],
        "responses": {
            "200": {"description": "Settings and config_version", **_json({
                "type": "object", "required": ["config_version", "settings"]})},
            "401": {"description": "Admin token missing or wrong",
                    **_json({"$ref": _REF + "OperationOutcome"})},
        },
    }}
    return paths


def build_openapi(definitions: Mapping[str, ServiceDefinition]) -> dict[str, Any]:
    """The OpenAPI 3.0.3 document (a JSON-ready dict): discovery, one call and one feedback path
    per service in ``definitions`` with their error statuses, the ops and admin endpoints, and
    the two bearer schemes."""
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "psychopharm-cds",
            "version": __version__,
            "description": "CDS Hooks 2.0 service: psychodynamic psychopharmacology advice "
                           "for treatment-resistance patterns.",
        },
        "paths": _paths(definitions),
        "components": {
            "schemas": _COMPONENTS,
            "securitySchemes": {
                "clientJwt": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "adminToken": {"type": "http", "scheme": "bearer"},
            },
        },
    }


@bp.get("/openapi.json")
def openapi_json() -> Response:
    """``GET /openapi.json``: ``build_openapi`` over the enabled services (no auth)."""
    return jsonify(build_openapi(current_app.extensions["psychopharm"].definitions))
