"""Typed site configuration: config/default.yaml with a site file deep-merged on top.

``load_settings(path)`` is the one door: ``serve``, ``check-config``, the CLI and the tests all go
through it. Unknown keys, wrong types and impossible values are errors that name the key and the
file; every problem is collected before raising ``ConfigError``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from cds_service.errors import ConfigError
from cds_service.patterns import ALL_PATTERNS
from config import DEFAULT_CONFIG

Mode = Literal["active", "silent", "off"]
HOOK_IDS = ("patient-view", "order-select", "order-sign", "medication-prescribe")


class _Strict(BaseModel):
    """Base of every section: unknown keys are errors, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ServiceSettings(_Strict):
    """``service``: the HTTP service as clients see it.

    - ``public_base_url``: the absolute http(s) URL clients call (no trailing slash); JWT ``aud``
      is checked against it; "" = the incoming request's URL (local use only).
    - ``max_body_bytes``: largest hook request body, bytes (larger: 413).
    - ``cors_allowed_origins``: origins browsers may call from; ``"*"`` = any.
    - ``max_cards``: cards shown per call at most, by pattern priority (silent ones not counted).
    - ``hooks``: hook id -> enabled, for the four hooks of ``HOOK_IDS`` only.
    - ``select_sign_dedup_minutes``: minutes during which a card shown at order-select is not
      repeated at order-sign for the same patient, prescriber and order.
    - ``suppression_days_after_override``: days a pattern stays suppressed for a patient after an
      override, unless the evidence grows.
    - ``timezone``: the site's IANA time zone ("Australia/Sydney"); "today" for the patterns is
      the date there, as the EHR's local dateTimes name it (default "UTC").
    """

    public_base_url: str = ""
    max_body_bytes: int = Field(5 * 1024 * 1024, gt=0)
    cors_allowed_origins: tuple[str, ...] = ("*",)
    max_cards: int = Field(3, ge=0)
    hooks: dict[str, bool] = Field(default_factory=lambda: dict.fromkeys(HOOK_IDS, True))
    select_sign_dedup_minutes: int = Field(60, ge=0)
    suppression_days_after_override: int = Field(30, ge=0)
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"{value!r} is not an IANA time zone (e.g. 'America/New_York', 'UTC')"
            ) from exc
        return value

    @field_validator("hooks")
    @classmethod
    def _known_hooks(cls, value: dict[str, bool]) -> dict[str, bool]:
        unknown = sorted(set(value) - set(HOOK_IDS))
        if unknown:
            raise ValueError(f"unknown hook(s) {unknown}; known: {list(HOOK_IDS)}")
        return value

    @field_validator("public_base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must be an absolute http(s) URL")
        return value.rstrip("/")


class TrustedClient(_Strict):
    """One ``auth.trusted_clients`` entry: a CDS client whose JWTs are accepted.

    - ``issuer``: the JWT ``iss`` it signs with (non-empty).
    - ``jwks_url`` / ``jwks_file``: where its public keys are; exactly one of the two.
    - ``jku_allowlist``: JWK Set URLs a token's ``jku`` header may name (CDS Hooks 2.0, Trusting
      CDS Clients); any other ``jku`` is never fetched.
    """

    issuer: str = Field(min_length=1)
    jwks_url: str | None = None
    jwks_file: str | None = None
    jku_allowlist: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _one_key_source(self) -> TrustedClient:
        if bool(self.jwks_url) == bool(self.jwks_file):
            raise ValueError("give exactly one of jwks_url or jwks_file")
        return self


class AuthSettings(_Strict):
    """``auth``: who may call the service (CDS Hooks 2.0 client JWTs).

    - ``require_jwt``: verify a client JWT on every call; needs ``trusted_clients``.
    - ``allow_insecure_bind``: allow a non-loopback bind without JWTs (a gateway authenticates).
    - ``algorithms``: accepted JWS algorithms; asymmetric ones only (ES*, RS*, PS*), as the spec
      requires.
    - ``clock_skew_s``: leeway for ``exp``/``iat``/``nbf``, seconds (0-600).
    - ``max_token_lifetime_s``: longest accepted ``exp`` - ``iat``, seconds.
    - ``trusted_clients``: the ``TrustedClient`` entries.
    - ``admin_token_sha256``: sha256 hex (64 characters, stored lower-case) of the admin/auditor
      bearer token; "" = admin API off.
    """

    require_jwt: bool = False
    allow_insecure_bind: bool = False
    algorithms: tuple[str, ...] = ("ES384", "RS384")
    clock_skew_s: int = Field(60, ge=0, le=600)
    max_token_lifetime_s: int = Field(3600, gt=0)
    trusted_clients: tuple[TrustedClient, ...] = ()
    admin_token_sha256: str = ""

    @field_validator("algorithms")
    @classmethod
    def _asymmetric_only(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        # The spec forbids "none" and symmetric algorithms (CDS Hooks 2.0, JWT Signing Algorithm).
        allowed = {"ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
        bad = [a for a in value if a not in allowed]
        if bad:
            raise ValueError(f"algorithm(s) {bad} not allowed; choose from {sorted(allowed)}")
        return value

    @field_validator("admin_token_sha256")
    @classmethod
    def _hex_digest(cls, value: str) -> str:
        if value and (len(value) != 64 or any(c not in "0123456789abcdef" for c in value.lower())):
            raise ValueError("must be a 64-character sha256 hex digest")
        return value.lower()

    @model_validator(mode="after")
    def _clients_when_required(self) -> AuthSettings:
        if self.require_jwt and not self.trusted_clients:
            raise ValueError("require_jwt is true but no trusted_clients are configured")
        return self


class FhirSettings(_Strict):
    """``fhir``: call-backs to the client's FHIR server when prefetch is incomplete.

    - ``allowed_servers``: base URLs (absolute http(s), no trailing slash) the service may call;
      exact prefix match, anything else is never fetched.
    - ``timeout_s``: connect + read budget per FHIR request, seconds (0-60].
    - ``call_budget_s``: total time for all FHIR fetches of one hook call, seconds (0-120],
      at least ``timeout_s``.
    - ``max_pages``: search pages followed per prefetch key.
    - ``max_bytes``: largest FHIR response body read, bytes.
    """

    allowed_servers: tuple[str, ...] = ()
    timeout_s: float = Field(2.0, gt=0, le=60)
    call_budget_s: float = Field(4.0, gt=0, le=120)
    max_pages: int = Field(10, ge=1)
    max_bytes: int = Field(10 * 1024 * 1024, gt=0)

    @field_validator("allowed_servers")
    @classmethod
    def _absolute(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for url in value:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"{url!r} is not an absolute http(s) URL")
        return tuple(u.rstrip("/") for u in value)

    @model_validator(mode="after")
    def _budget_covers_timeout(self) -> FhirSettings:
        if self.call_budget_s < self.timeout_s:
            raise ValueError("call_budget_s must be >= timeout_s")
        return self


# The shipped patient-key secret: fine on one's own machine, refused wherever others can call us.
PLACEHOLDER_PATIENT_KEY_SECRET = "change-me-local-only"  # noqa: S105 - the known placeholder
HOW_TO_SET_PATIENT_KEY = (
    "set storage.patient_key_secret in the site file to a long random value, e.g. the output of "
    "python3 -c 'import secrets; print(secrets.token_urlsafe(32))', and keep it: "
    "pseudonymous patient keys (suppression, the audit log) depend on it"
)


class StorageSettings(_Strict):
    """``storage``: the audit database.

    - ``url``: ``sqlite:///<path>`` or a PostgreSQL URL (``postgres://`` and ``postgresql://``
      are stored as ``postgresql+psycopg://``).
    - ``patient_key_secret``: HMAC key of the pseudonymous patient keys (>= 8 characters); the
      placeholder is refused with ``require_jwt`` or ``allow_insecure_bind``, and by ``serve``
      beyond loopback.
    - ``queue_size``: card rows waiting for the writer at most (more are dropped, counted).
    - ``flush_interval_s``: longest wait before a batch is written, seconds (0-10].
    """

    url: str = "sqlite:///psychopharm-cds-audit.sqlite3"
    patient_key_secret: str = Field(PLACEHOLDER_PATIENT_KEY_SECRET, min_length=8)
    queue_size: int = Field(10000, gt=0)
    flush_interval_s: float = Field(0.2, gt=0, le=10)

    @field_validator("url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        # The driver installed for PostgreSQL is psycopg 3; plain postgres URLs mean it.
        for plain in ("postgres://", "postgresql://"):
            if value.startswith(plain):
                return "postgresql+psycopg://" + value.removeprefix(plain)
        if not value.startswith(("sqlite:///", "postgresql+psycopg://")):
            raise ValueError("must be a sqlite:///<path> or postgresql+psycopg://... URL")
        return value


class CacheSettings(_Strict):
    """``cache``: ``redis_url`` of the shared jti replay store and select->sign dedup across
    hosts; "" = both live in the audit database (``storage.url``)."""

    redis_url: str = ""


class SmartSettings(_Strict):
    """The medication-timeline SMART on FHIR app (``/app/launch``); off while ``client_id`` is "".

    ``scopes`` are sent besides the read scopes of the resources the app reads (those follow the
    SMART version the EHR announces). ``session_secret`` keys the encrypted session cookie, so
    every worker (and host) of a site must share it.

    - ``client_id`` / ``client_secret``: as registered in the EHR; no secret = public client
      (PKCE only), a secret = confidential client (HTTP Basic).
    - ``session_secret``: >= 32 characters whenever ``client_id`` is set.
    - ``link_label``: the card link's text.
    - ``call_budget_s``: total time to read one patient's history, seconds (0-120].
    - ``max_pages``: search pages followed per resource type.
    - ``default_session_s``: session length when the token response has no ``expires_in``,
      seconds (0-86400].
    """

    client_id: str = ""
    client_secret: str = ""
    scopes: tuple[str, ...] = ("launch", "openid", "fhirUser")
    session_secret: str = ""
    link_label: str = Field("Medication timeline", min_length=1)
    # Reading a whole history takes longer than a hook call's FHIR budget.
    call_budget_s: float = Field(20.0, gt=0, le=120)
    max_pages: int = Field(50, ge=1)
    # When the token response gives no expires_in, the session ends after this long.
    default_session_s: int = Field(3600, gt=0, le=86400)

    @property
    def enabled(self) -> bool:
        """True when the site registered the app (cards then carry its link)."""
        return bool(self.client_id)

    @field_validator("scopes")
    @classmethod
    def _plain_scopes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [s for s in value if not s or any(c.isspace() for c in s)]
        if bad:
            raise ValueError(f"scope(s) {bad} must be non-empty and without spaces")
        return value

    @model_validator(mode="after")
    def _secret_when_enabled(self) -> SmartSettings:
        if self.client_id and (
            len(self.session_secret) < 32 or is_placeholder_secret(self.session_secret)
        ):
            raise ValueError(
                "session_secret must be set (32 characters or more, the same on every worker; "
                "not a placeholder) when client_id is set"
            )
        return self


class PatternSettings(_Strict):
    """``patterns.<id>``: a pattern's switch and priority; its thresholds are validated by its
    own dataclass.

    - ``mode``: ``active`` (cards shown), ``silent`` (evaluated and audited, not shown) or
      ``off``; YAML ``false`` (an unquoted ``off``) is taken as ``off``.
    - ``priority``: order among the cards, lower first (>= 0).
    - ``thresholds``: the pattern module's frozen ``Thresholds``, built from the section's other
      keys (config/default.yaml gives each with its source).
    """

    mode: Mode = "active"
    priority: int = Field(10, ge=0)
    thresholds: Any = None  # the pattern module's frozen Thresholds instance

    @field_validator("mode", mode="before")
    @classmethod
    def _yaml_off(cls, value: Any) -> Any:
        # YAML 1.1 (PyYAML) reads an unquoted `off` (or `no`, `false`) as the boolean false;
        # `mode: off` is what a site writes, so false means off. True stays an error.
        return "off" if value is False else value


class Settings(_Strict):
    """The whole validated configuration: one attribute per section (see each class),
    ``patterns`` keyed by pattern id, ``config_version`` (the first 16 hex characters of the
    sha256 of the validated configuration, written on every audit row) and ``source`` (the site
    file, or "default"). Build it with ``load_settings`` or ``build_settings``, not directly."""

    service: ServiceSettings = ServiceSettings()
    auth: AuthSettings = AuthSettings()
    fhir: FhirSettings = FhirSettings()
    storage: StorageSettings = StorageSettings()
    cache: CacheSettings = CacheSettings()
    smart: SmartSettings = SmartSettings()
    # Site additions to config/codes.yaml (encounter class map, visit kinds, stop reasons...),
    # deep-merged over it by ``loaders.load_code_lists``; lists replace the bundled list.
    codes: dict[str, Any] = Field(default_factory=dict)
    patterns: dict[str, PatternSettings] = Field(default_factory=dict)
    # Content hash of the merged configuration; written on every audit row.
    config_version: str = ""
    source: str = "default"

    def pattern(self, pattern_id: str) -> PatternSettings:
        """The settings of ``pattern_id``; ``KeyError`` for an unknown id."""
        return self.patterns[pattern_id]

    @model_validator(mode="after")
    def _smart_needs_public_url(self) -> Settings:
        # The card link and the OAuth redirect_uri are absolute URLs the EHR must reach.
        if self.smart.enabled and not self.service.public_base_url:
            raise ValueError("smart.client_id is set but service.public_base_url is empty")
        return self


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """A new mapping: ``override`` over ``base``, recursing where both hold a mapping; any other
    value (lists too, and None) replaces. Neither argument is changed."""
    merged: dict[str, Any] = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    return data


def _format_errors(exc: ValidationError, prefix: str) -> list[str]:
    problems = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in (prefix, *err["loc"]) if p != "")
        problems.append(f"{loc}: {err['msg']}")
    return problems


def _validate_patterns(raw: Any, problems: list[str]) -> dict[str, PatternSettings]:
    if not isinstance(raw, Mapping):
        problems.append("patterns: must be a mapping of pattern id to settings")
        return {}
    known = {p.PATTERN_ID: p for p in ALL_PATTERNS}
    for unknown in sorted(set(raw) - set(known)):
        problems.append(f"patterns.{unknown}: unknown pattern; known: {sorted(known)}")
    result: dict[str, PatternSettings] = {}
    for pattern_id, module in known.items():
        # An empty section in YAML is null, which deep_merge lets replace the defaults: an error
        # rather than a silent fall back to the dataclass defaults.
        section = raw.get(pattern_id, {})
        if not isinstance(section, Mapping):
            problems.append(f"patterns.{pattern_id}: must be a mapping")
            continue
        switch = {k: section[k] for k in ("mode", "priority") if k in section}
        threshold_values = {k: v for k, v in section.items() if k not in ("mode", "priority")}
        # Checked on the raw values, so that a bad value is reported even when another key of
        # the same section fails type validation.
        _check_threshold_values(pattern_id, module.Thresholds, threshold_values, problems)
        try:
            thresholds = TypeAdapter(module.Thresholds).validate_python(threshold_values)
            result[pattern_id] = PatternSettings(**switch, thresholds=thresholds)
        except ValidationError as exc:
            problems.extend(_format_errors(exc, f"patterns.{pattern_id}"))
    return result


def _check_threshold_values(
    pattern_id: str, thresholds_type: Any, values: Mapping[str, Any], problems: list[str]
) -> None:
    """Impossible values: negative windows and counts, fractions outside 0..1. A mapping named
    ``<name>_by_<kind>`` (``min_trial_days_by_class``) holds values of ``<name>``: each is
    checked like it."""
    for f in fields(thresholds_type):
        raw = values.get(f.name)
        name, by, _ = f.name.partition("_by_")
        if by and isinstance(raw, Mapping):
            for kind, value in raw.items():
                key = f"patterns.{pattern_id}.{f.name}.{kind}"
                _check_threshold_value(key, name, value, problems)
        else:
            _check_threshold_value(f"patterns.{pattern_id}.{f.name}", f.name, raw, problems)


def _check_threshold_value(key: str, name: str, value: Any, problems: list[str]) -> None:
    """One number, by what its name says it is (a window, a count, a fraction)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return
    if name.endswith(("_days", "_s")) and value <= 0:
        problems.append(f"{key}: must be greater than 0 (got {value})")
    elif name.startswith(("min_", "max_")) and value < 1:
        problems.append(f"{key}: must be at least 1 (got {value})")
    elif name.startswith("pdc") and not 0 < value <= 1:
        problems.append(f"{key}: must be a fraction in (0, 1] (got {value})")
    elif value < 0:
        problems.append(f"{key}: must not be negative (got {value})")


def is_placeholder_secret(value: str) -> bool:
    """True for a secret nobody chose: the shipped placeholder, a documentation placeholder in
    angle brackets ("<long random site secret>", as the README writes them) or a "change me"."""
    folded = value.strip().lower()
    return (
        value == PLACEHOLDER_PATIENT_KEY_SECRET
        or (folded.startswith("<") and folded.endswith(">"))
        or "change-me" in folded
        or "changeme" in folded
    )


def uses_placeholder_secret(settings: Settings) -> bool:
    """True while ``storage.patient_key_secret`` is a placeholder (``is_placeholder_secret``)."""
    return is_placeholder_secret(settings.storage.patient_key_secret)


def _deployment_problems(settings: Settings) -> list[str]:
    """Settings that are valid alone but unsafe together. (``serve`` also refuses the placeholder
    secret when it binds beyond loopback, which only the command line tells.)"""
    if uses_placeholder_secret(settings) and (
        settings.auth.require_jwt or settings.auth.allow_insecure_bind
    ):
        reason = "auth.require_jwt" if settings.auth.require_jwt else "auth.allow_insecure_bind"
        return [
            f"storage.patient_key_secret: a placeholder "
            f"({settings.storage.patient_key_secret!r}) is refused with {reason} true; "
            f"{HOW_TO_SET_PATIENT_KEY}"
        ]
    return []


def build_settings(raw: Mapping[str, Any], source: str = "<mapping>") -> Settings:
    """Validate an already merged mapping into ``Settings`` with ``config_version`` and
    ``source`` set; raises ``ConfigError`` (message naming ``source``) listing every problem."""
    problems: list[str] = []
    raw = dict(raw)
    patterns = _validate_patterns(raw.pop("patterns", {}), problems)
    settings: Settings | None = None
    try:
        settings = Settings(**raw)
    except ValidationError as exc:
        problems.extend(_format_errors(exc, ""))
    except TypeError as exc:  # a section given as a scalar
        problems.append(str(exc))
    if settings is not None:
        problems.extend(_deployment_problems(settings))
    if problems or settings is None:
        raise ConfigError(f"{source}: invalid configuration", problems=problems)
    canonical = json.dumps(
        {
            **settings.model_dump(mode="json", exclude={"config_version", "source", "patterns"}),
            "patterns": {
                pid: {"mode": p.mode, "priority": p.priority, **asdict(p.thresholds)}
                for pid, p in sorted(patterns.items())
            },
        },
        sort_keys=True,
    )
    version = hashlib.sha256(canonical.encode()).hexdigest()[:16]
    return settings.model_copy(
        update={"patterns": patterns, "config_version": version, "source": source}
    )


def load_settings(
    path: str | Path | None = None, overrides: Mapping[str, Any] | None = None
) -> Settings:
    """Defaults, then the site file (if any), then ``overrides`` (tests), validated once.

    Raises ``ConfigError`` when a file cannot be read, is not YAML or not a mapping, or when the
    merged configuration is invalid (every problem listed in ``problems``).
    """
    merged = _read_yaml(DEFAULT_CONFIG)
    source = "default"
    if path is not None:
        merged = deep_merge(merged, _read_yaml(Path(path)))
        source = str(path)
    if overrides:
        merged = deep_merge(merged, overrides)
    return build_settings(merged, source=source)
