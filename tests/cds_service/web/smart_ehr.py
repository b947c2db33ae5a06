"""A small SMART on FHIR EHR for the timeline tests: authorization server and FHIR server.

It runs on a real loopback HTTP server (pytest-httpserver), so the app's FHIR client, Authlib and
the redirects go over HTTP as they would in production. It answers:

- ``GET /fhir/.well-known/smart-configuration`` (SMART v2 by default, v1 on request);
- ``GET /auth/authorize``: records the request and redirects the browser back to the
  ``redirect_uri`` with a fresh code and the given state (an EHR whose user consents at once);
- ``POST /auth/token``: checks the code, the client and the PKCE verifier against the challenge
  recorded at /authorize, and answers with a token for the launched patient and the appContext;
- ``GET /fhir/<Type>?patient=<id>...``: a searchset of that patient's resources, ``PAGE_SIZE``
  entries a page, with ``next`` links; it refuses any call without the issued token.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

PAGE_SIZE = 10
ACCESS_TOKEN = "at-" + "9f2c" * 12  # recognisable, to prove it never leaks


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass
class FakeEhr:
    server: HTTPServer
    patient_id: str
    resources: list[dict[str, Any]]
    client_id: str = "timeline-app"
    client_secret: str | None = None
    v2: bool = True
    app_context: str | None = None
    token_status: int = 200
    failing_types: set[str] = field(default_factory=set)
    authorize_requests: list[dict[str, str]] = field(default_factory=list)
    token_requests: list[tuple[dict[str, str], dict[str, str]]] = field(default_factory=list)
    fhir_requests: list[str] = field(default_factory=list)
    codes: dict[str, str] = field(default_factory=dict)  # code -> code_challenge

    @property
    def iss(self) -> str:
        return self.server.url_for("/fhir").rstrip("/")

    def install(self) -> FakeEhr:
        self.server.expect_request("/fhir/.well-known/smart-configuration").respond_with_handler(
            self._configuration
        )
        self.server.expect_request("/auth/authorize").respond_with_handler(self._authorize)
        self.server.expect_request("/auth/token", method="POST").respond_with_handler(
            self._token
        )
        self.server.expect_request(re.compile(r"^/fhir/[A-Za-z]+$")).respond_with_handler(
            self._search
        )
        self.server.expect_request(re.compile(r"^/fhir/Patient/[^/]+$")).respond_with_handler(
            self._patient
        )
        return self

    def _patient(self, request: Request) -> Response:
        self.fhir_requests.append(request.full_path)
        if request.headers.get("Authorization") != f"Bearer {ACCESS_TOKEN}":
            return Response(status=401)
        found = [r for r in self.resources if r["resourceType"] == "Patient"
                 and request.path.endswith("/" + r["id"])]
        if not found:
            return Response(status=404)
        return Response(json.dumps(found[0]), content_type="application/fhir+json")

    def _configuration(self, request: Request) -> Response:
        scopes = ["launch", "openid", "fhirUser"] + (
            ["patient/*.rs", "patient/MedicationRequest.rs"] if self.v2
            else ["patient/*.read"]
        )
        body = {
            "issuer": self.server.url_for("/auth"),
            "authorization_endpoint": self.server.url_for("/auth/authorize"),
            "token_endpoint": self.server.url_for("/auth/token"),
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "none"],
            "scopes_supported": scopes,
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
            "capabilities": ["launch-ehr", "context-ehr-patient", "client-public",
                             "client-confidential-symmetric"]
            + (["permission-v2"] if self.v2 else ["permission-v1"]),
        }
        return Response(json.dumps(body), content_type="application/json")

    def _authorize(self, request: Request) -> Response:
        params = {k: v for k, v in request.args.items()}
        self.authorize_requests.append(params)
        code = secrets.token_urlsafe(12)
        self.codes[code] = params.get("code_challenge", "")
        target = params["redirect_uri"] + "?" + urlencode({"code": code, "state": params["state"]})
        return Response(status=302, headers={"Location": target})

    def _token(self, request: Request) -> Response:
        form = {k: v for k, v in request.form.items()}
        self.token_requests.append((form, dict(request.headers)))
        if self.token_status != 200:
            return Response(json.dumps({"error": "server_error"}), status=self.token_status,
                            content_type="application/json")
        challenge = self.codes.pop(form.get("code", ""), None)
        problems = []
        if challenge is None:
            problems.append("unknown or reused code")
        elif s256(form.get("code_verifier", "")) != challenge:
            problems.append("PKCE verifier does not match the challenge")
        if not self._client_ok(form, request.headers.get("Authorization")):
            problems.append("client authentication failed")
        if problems:
            return Response(json.dumps({"error": "invalid_grant",
                                        "error_description": "; ".join(problems)}),
                            status=400, content_type="application/json")
        body: dict[str, Any] = {
            "access_token": ACCESS_TOKEN, "token_type": "Bearer", "expires_in": 3600,
            "scope": "launch openid fhirUser patient/*.rs", "patient": self.patient_id,
        }
        if self.app_context is not None:
            body["appContext"] = self.app_context
        return Response(json.dumps(body), content_type="application/json")

    def _client_ok(self, form: Mapping[str, str], authorization: str | None) -> bool:
        if self.client_secret is None:
            return form.get("client_id") == self.client_id and authorization is None
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        return authorization == f"Basic {expected}" and "client_secret" not in form

    def _search(self, request: Request) -> Response:
        rtype = request.path.rsplit("/", 1)[1]
        self.fhir_requests.append(request.full_path)
        if request.headers.get("Authorization") != f"Bearer {ACCESS_TOKEN}":
            return Response(status=401)
        if rtype in self.failing_types:
            return Response("upstream failure", status=500)
        matching = [r for r in self.resources if r["resourceType"] == rtype]
        if request.args.get("patient") != self.patient_id:
            matching = []
        page = int(request.args.get("_page", "1"))
        chunk = matching[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]
        bundle: dict[str, Any] = {
            "resourceType": "Bundle", "type": "searchset", "total": len(matching),
            "link": [{"relation": "self", "url": request.url}],
            "entry": [{"fullUrl": f"{self.iss}/{rtype}/{r['id']}", "resource": r}
                      for r in chunk],
        }
        if page * PAGE_SIZE < len(matching):
            query = {k: v for k, v in request.args.items()}
            query["_page"] = str(page + 1)
            bundle["link"].append({"relation": "next",
                                   "url": f"{self.iss}/{rtype}?{urlencode(query)}"})
        return Response(json.dumps(bundle), content_type="application/fhir+json")


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def smart_overrides(iss: str, public_base_url: str = "http://localhost",
                    **smart: Any) -> dict[str, Any]:
    return {
        "service": {"public_base_url": public_base_url},
        "fhir": {"allowed_servers": [iss]},
        "smart": {"client_id": "timeline-app", "session_secret": "s" * 40, **smart},
    }


def resource_types(resources: Iterable[Mapping[str, Any]]) -> set[str]:
    return {r["resourceType"] for r in resources}
