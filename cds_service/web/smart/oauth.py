"""SMART App Launch (EHR launch) with Authlib: discovery, authorization request, code exchange.

The authorization code grant with PKCE (S256) is Authlib's ``OAuth2Session``: it derives the code
challenge, builds the authorization URL and posts the code with the verifier to the token endpoint,
as a public client (``client_id`` in the body) or, when the site has a ``client_secret``, as a
confidential client with HTTP Basic. This module adds only what SMART specifies on top: reading
``.well-known/smart-configuration`` (or the CapabilityStatement's ``oauth-uris`` extension of older
servers) through the allow-listed FHIR client, ``aud`` = the FHIR base, and read scopes in SMART
v2 (``patient/X.rs``) or v1 (``patient/X.read``) syntax, whichever the server announces.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from authlib.common.security import generate_token
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session

from cds_service.gather.fhir_client import FhirClient, FhirFetchError, is_loopback
from cds_service.settings import SmartSettings
from cds_service.web.smart.errors import LaunchError, bad_launch, ehr_failed

log = logging.getLogger(__name__)

# The resources the timeline reads (Medication for medicationReference, Patient for the record).
READ_TYPES = (
    "Patient", "MedicationRequest", "MedicationStatement", "MedicationDispense", "Medication",
    "AllergyIntolerance", "Encounter", "Observation", "Condition",
)
OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
# A SMART v2 resource scope: patient/Observation.rs, user/*.cruds (v1 ends in .read/.write/.*).
_V2_SCOPE = re.compile(r"^(patient|user|system)/[A-Za-z*]+\.c?r?u?d?s?(\?.*)?$")
TOKEN_TIMEOUT_S = 10.0
# RFC 7636: 43-128 characters; 64 from Authlib's generator (unreserved characters).
VERIFIER_LENGTH = 64
STATE_LENGTH = 43


@dataclass(frozen=True, slots=True)
class SmartConfiguration:
    """The endpoints of the EHR's authorization server, and its SMART version."""
    authorization_endpoint: str
    token_endpoint: str
    v2: bool  # the server announces SMART v2 scopes


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    """Where to send the browser, with the ``state`` and PKCE verifier to keep."""
    url: str
    state: str
    code_verifier: str


@dataclass(frozen=True, slots=True)
class TokenGrant:
    """What the token response gave: token, patient id, lifetime (seconds), appContext."""
    access_token: str
    patient: str
    expires_in: int | None
    app_context: Any  # the card's appContext as the EHR returns it (string or object), or None


def _endpoint(value: Any, name: str) -> str:
    """An absolute https URL (http only on loopback, for local testing), else LaunchError."""
    if not isinstance(value, str) or not value:
        raise ehr_failed(f"The EHR's SMART configuration has no {name}.")
    try:
        parts = urlsplit(value)
    except ValueError:
        parts = None
    if parts is None or not parts.hostname or parts.username is not None:
        raise ehr_failed(f"The EHR's SMART configuration has an unusable {name}.")
    if parts.scheme != "https" and not (parts.scheme == "http" and is_loopback(parts.hostname)):
        raise ehr_failed(f"The EHR's {name} is not https.")
    return value


def is_v2(config: Mapping[str, Any]) -> bool:
    """True when the smart-configuration announces SMART v2 scopes (or ``permission-v2``)."""
    capabilities = config.get("capabilities")
    if isinstance(capabilities, list) and "permission-v2" in capabilities:
        return True
    scopes = config.get("scopes_supported")
    return isinstance(scopes, list) and any(
        isinstance(s, str) and _V2_SCOPE.match(s) and not s.endswith((".read", ".write", ".*"))
        for s in scopes
    )


def discover(client: FhirClient, iss: str, budget_s: float) -> SmartConfiguration:
    """The server's endpoints and SMART version; LaunchError when it cannot be read."""
    deadline = client.clock() + budget_s
    try:
        config = client.get_json(f"{iss}/.well-known/smart-configuration", token=None,
                                 deadline=deadline)
    except FhirFetchError as exc:
        log.info("smart-configuration not readable (%s); trying the CapabilityStatement",
                 exc.reason)
        config = _from_capability_statement(client, iss, deadline)
    if not isinstance(config, Mapping):
        raise ehr_failed("The EHR's SMART configuration is not a JSON object.")
    return SmartConfiguration(
        authorization_endpoint=_endpoint(
            config.get("authorization_endpoint"), "authorization_endpoint"
        ),
        token_endpoint=_endpoint(config.get("token_endpoint"), "token_endpoint"),
        v2=is_v2(config),
    )


def _from_capability_statement(
    client: FhirClient, iss: str, deadline: float
) -> Mapping[str, Any]:
    try:
        statement = client.get_json(f"{iss}/metadata", token=None, deadline=deadline)
    except FhirFetchError as exc:
        raise ehr_failed(
            f"The EHR's SMART configuration could not be read ({exc.reason})."
        ) from exc
    rests = statement.get("rest") if isinstance(statement, Mapping) else None
    for rest in rests if isinstance(rests, list) else []:
        security = rest.get("security") if isinstance(rest, Mapping) else None
        extensions = security.get("extension") if isinstance(security, Mapping) else None
        for ext in extensions if isinstance(extensions, list) else []:
            if isinstance(ext, Mapping) and ext.get("url") == OAUTH_URIS:
                uris = {
                    e.get("url"): e.get("valueUri")
                    for e in ext.get("extension") or []
                    if isinstance(e, Mapping)
                }
                return {"authorization_endpoint": uris.get("authorize"),
                        "token_endpoint": uris.get("token")}
    raise ehr_failed("The EHR announces no SMART authorization endpoints.")


def scopes(settings: SmartSettings, v2: bool) -> str:
    """The space-separated scope: ``smart.scopes`` and a read scope per resource type read."""
    suffix = "rs" if v2 else "read"
    reads = [f"patient/{t}.{suffix}" for t in READ_TYPES]
    return " ".join(dict.fromkeys([*settings.scopes, *reads]))


def _session(settings: SmartSettings, redirect_uri: str, scope: str | None = None) -> OAuth2Session:
    confidential = bool(settings.client_secret)
    session = OAuth2Session(
        client_id=settings.client_id,
        client_secret=settings.client_secret or None,
        token_endpoint_auth_method="client_secret_basic" if confidential else "none",
        redirect_uri=redirect_uri,
        scope=scope,
        code_challenge_method="S256",
    )
    # No proxies or .netrc credentials from the environment, as for the FHIR client.
    session.trust_env = False
    return session


def authorization_request(
    settings: SmartSettings, config: SmartConfiguration, *, iss: str, launch: str,
    redirect_uri: str,
) -> AuthorizationRequest:
    """The URL to send the browser to, with a fresh state and PKCE verifier."""
    state = generate_token(STATE_LENGTH)
    verifier = generate_token(VERIFIER_LENGTH)
    with _session(settings, redirect_uri, scopes(settings, config.v2)) as session:
        url, _ = session.create_authorization_url(
            config.authorization_endpoint, state=state, code_verifier=verifier,
            launch=launch, aud=iss,
        )
    return AuthorizationRequest(url=url, state=state, code_verifier=verifier)


def exchange_code(
    settings: SmartSettings, *, token_endpoint: str, code: str, code_verifier: str,
    redirect_uri: str,
) -> TokenGrant:
    """POST the code with its PKCE verifier; LaunchError when no usable token comes back."""
    started = time.monotonic()
    with _session(settings, redirect_uri) as session:
        try:
            token = session.fetch_token(
                token_endpoint, grant_type="authorization_code", code=code,
                code_verifier=code_verifier, timeout=TOKEN_TIMEOUT_S, allow_redirects=False,
            )
        except OAuthError as exc:
            # The error code is the server's (RFC 6749 §5.2); its description may echo input.
            log.warning("smart token exchange refused: error=%s", exc.error)
            raise ehr_failed(
                f"The EHR's sign-in server refused the request ({exc.error})."
            ) from exc
        except (requests.RequestException, ValueError) as exc:
            log.warning("smart token exchange failed: %s", type(exc).__name__)
            raise ehr_failed("The EHR's sign-in server could not be reached or answered "
                             "with something other than a token.") from exc
    log.info("smart token received in %.0f ms", (time.monotonic() - started) * 1000)
    return _grant(token)


def _grant(token: Mapping[str, Any]) -> TokenGrant:
    access_token = token.get("access_token")
    patient = token.get("patient")
    if not isinstance(access_token, str) or not access_token:
        raise ehr_failed("The EHR's sign-in server sent no access token.")
    if not isinstance(patient, str) or not patient:
        raise LaunchError(
            400, "No patient was selected",
            "The EHR did not say which patient's chart the timeline is for.",
            "Open the timeline from within a patient's chart.",
        )
    expires_in = token.get("expires_in")
    try:
        expires = int(expires_in) if expires_in is not None else None
    except (TypeError, ValueError):
        expires = None
    return TokenGrant(access_token, patient, expires, token.get("appContext"))


def check_iss(client: FhirClient, iss: str | None) -> str:
    """The FHIR base URL the EHR launched from, if it is allow-listed; else LaunchError (400)."""
    if not iss:
        raise bad_launch("The EHR did not say which FHIR server to read (no iss parameter).")
    base = iss.rstrip("/")
    refusal = client.refusal(base)
    if refusal is not None:
        raise bad_launch(
            f"The FHIR server this launch names is {refusal}; the timeline reads only the "
            "servers the site has approved."
        )
    return base
