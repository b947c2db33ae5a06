"""Trusting CDS clients (CDS Hooks 2.0 items 50-59): every check, each failure with its own code."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import redis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from pytest_httpserver import HTTPServer

from cds_service.errors import AuthError
from cds_service.settings import AuthSettings, TrustedClient
from cds_service.storage.ttl_store import MemoryTtlStore, RedisTtlStore, TtlStore
from cds_service.web.auth import JwtVerifier, VerifiedClient, check_admin
from cds_service.web.jwks import KeyStore

NOW = 1_795_000_000.0  # fixed epoch seconds; tokens are dated relative to it
ISSUER = "https://ehr.example.org"
AUD = "https://cds.example.org/cds-services/psychopharm-order-sign"
KEYS_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "keys"
REDIS_URL = "redis://127.0.0.1:6379/0"

SANDBOX_ISSUER = "https://sandbox.cds-hooks.org"
SANDBOX_KID = "44823f3d-0b01-4a6c-a80e-b9d3e8a7226f"
SANDBOX_JKU = "https://sandbox.cds-hooks.org/.well-known/jwks.json"


# Keys and tokens


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP384R1())


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_jwk(private: Any, kid: str, alg: str) -> dict[str, Any]:
    algorithm = ECAlgorithm if alg.startswith("ES") else RSAAlgorithm
    jwk: dict[str, Any] = algorithm.to_jwk(private.public_key(), as_dict=True)
    return {**jwk, "kid": kid, "use": "sig", "alg": alg}


def claims(**overrides: Any) -> dict[str, Any]:
    base = {
        "iss": ISSUER,
        "aud": AUD,
        "iat": int(NOW),
        "exp": int(NOW) + 300,
        "jti": str(uuid.uuid4()),
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def sign(
    private: Any,
    payload: dict[str, Any],
    *,
    alg: str = "ES384",
    kid: str | None = "ec-1",
    **hdr: Any,
) -> str:
    headers = {"kid": kid, **hdr} if kid is not None else dict(hdr)
    return jwt.encode(payload, private, algorithm=alg, headers=headers)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made(header: dict[str, Any], payload: dict[str, Any], secret: bytes | None) -> str:
    """A token PyJWT would refuse to produce (alg none, HMAC keyed with a public key)."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    if secret is None:
        return signing_input + "."
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384}[header["alg"]]
    return signing_input + "." + b64(hmac.new(secret, signing_input.encode(), digest).digest())


def bearer(token: str) -> str:
    return f"Bearer {token}"


@pytest.fixture
def jwks_file(tmp_path: Path, ec_key: Any, rsa_key: Any) -> Path:
    path = tmp_path / "ehr-jwks.json"
    keys = [public_jwk(ec_key, "ec-1", "ES384"), public_jwk(rsa_key, "rsa-1", "RS384")]
    path.write_text(json.dumps({"keys": keys}), encoding="utf-8")
    return path


def auth_settings(*clients: TrustedClient, **overrides: Any) -> AuthSettings:
    return AuthSettings(require_jwt=True, trusted_clients=clients, **overrides)


@pytest.fixture
def make_verifier(jwks_file: Path) -> Callable[..., JwtVerifier]:
    def make(replay: TtlStore | None = None, **overrides: Any) -> JwtVerifier:
        auth = auth_settings(TrustedClient(issuer=ISSUER, jwks_file=str(jwks_file)), **overrides)
        store = replay if replay is not None else MemoryTtlStore()
        return JwtVerifier(auth, store, clock=lambda: NOW)

    return make


@pytest.fixture
def verifier(make_verifier: Callable[..., JwtVerifier]) -> JwtVerifier:
    return make_verifier()


def rejected(verifier: JwtVerifier, header: str | None, audience: str = AUD) -> str:
    with pytest.raises(AuthError) as info:
        verifier.verify(header, audience)
    assert info.value.status == 401
    return info.value.code


# Accepted tokens


def test_es384_token_is_accepted(verifier: JwtVerifier, ec_key: Any) -> None:
    payload = claims()
    client = verifier.verify(bearer(sign(ec_key, payload)), AUD)
    assert client == VerifiedClient(issuer=ISSUER, jti=payload["jti"], tenant=None)


def test_rs384_token_is_accepted(verifier: JwtVerifier, rsa_key: Any) -> None:
    token = sign(rsa_key, claims(), alg="RS384", kid="rsa-1")
    assert verifier.verify(bearer(token), AUD).issuer == ISSUER


def test_tenant_is_returned_and_sub_is_ignored(verifier: JwtVerifier, ec_key: Any) -> None:
    token = sign(ec_key, claims(tenant="org-42", sub="client_id"))
    assert verifier.verify(bearer(token), AUD).tenant == "org-42"


def test_aud_array_containing_the_endpoint_is_accepted(verifier: JwtVerifier, ec_key: Any) -> None:
    token = sign(ec_key, claims(aud=["https://other.example.org", AUD]))
    assert verifier.verify(bearer(token), AUD).issuer == ISSUER


def test_bearer_scheme_is_case_insensitive(verifier: JwtVerifier, ec_key: Any) -> None:
    assert verifier.verify("bearer " + sign(ec_key, claims()), AUD).issuer == ISSUER


def test_sandbox_shaped_token_verifies_with_the_pinned_sandbox_jwks() -> None:
    """Header and payload exactly as the CDS Hooks sandbox sends them (cds-hooks-2.0.md §2.1),
    signed with the sandbox's published test key; its jku is unreachable offline, so the JWKS is
    pinned and the jku (not allowlisted) is never fetched."""
    private = serialization.load_pem_private_key(
        (KEYS_DIR / "sandbox-ecprivkey.pem").read_bytes(), password=None
    )
    header = {"alg": "ES384", "typ": "JWT", "kid": SANDBOX_KID, "jku": SANDBOX_JKU}
    iat = int(NOW)
    payload = {
        "iss": SANDBOX_ISSUER,
        "aud": AUD,
        "exp": iat + 300,
        "iat": iat,
        "jti": str(uuid.uuid4()),
    }
    token = jwt.encode(payload, private, algorithm="ES384", headers=header)
    assert jwt.get_unverified_header(token) == header
    auth = auth_settings(
        TrustedClient(issuer=SANDBOX_ISSUER, jwks_file=str(KEYS_DIR / "sandbox-jwks.json"))
    )
    verifier = JwtVerifier(auth, MemoryTtlStore(), clock=lambda: NOW)
    assert verifier.verify(bearer(token), AUD) == VerifiedClient(
        issuer=SANDBOX_ISSUER, jti=payload["jti"], tenant=None
    )


def test_enabled_follows_require_jwt(jwks_file: Path) -> None:
    client = TrustedClient(issuer=ISSUER, jwks_file=str(jwks_file))
    assert JwtVerifier(auth_settings(client), MemoryTtlStore()).enabled is True
    assert JwtVerifier(AuthSettings(), MemoryTtlStore()).enabled is False


# Header and token shape


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "missing-token"),
        ("", "missing-token"),
        ("Basic dXNlcjpwYXNz", "malformed-token"),
        ("Bearer", "malformed-token"),
        ("Bearer not-a-jwt", "malformed-token"),
        ("Bearer a.b.c", "malformed-token"),
        ("Bearer " + "x" * 20_000, "malformed-token"),
    ],
    ids=["none", "empty", "basic", "no-token", "garbage", "three-junk-parts", "oversized"],
)
def test_bad_authorization_header(verifier: JwtVerifier, header: str | None, code: str) -> None:
    assert rejected(verifier, header) == code


def test_missing_kid_is_rejected(verifier: JwtVerifier, ec_key: Any) -> None:
    assert rejected(verifier, bearer(sign(ec_key, claims(), kid=None))) == "malformed-token"


@pytest.mark.parametrize("typ", [None, "JWS", "at+jwt"])
def test_typ_must_be_jwt(verifier: JwtVerifier, ec_key: Any, typ: str | None) -> None:
    token = sign(ec_key, claims(), typ=typ)
    assert rejected(verifier, bearer(token)) == "malformed-token"


# Algorithms: never none, never HMAC


def test_alg_none_is_rejected(verifier: JwtVerifier) -> None:
    token = hand_made({"alg": "none", "typ": "JWT", "kid": "ec-1"}, claims(), None)
    assert rejected(verifier, bearer(token)) == "algorithm-not-allowed"


def test_hs256_keyed_with_the_public_key_is_rejected(verifier: JwtVerifier, ec_key: Any) -> None:
    """The classic key-confusion attack: HMAC with the published public key as the secret."""
    public_pem = ec_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    token = hand_made({"alg": "HS256", "typ": "JWT", "kid": "ec-1"}, claims(), public_pem)
    assert rejected(verifier, bearer(token)) == "algorithm-not-allowed"


def test_hs384_is_rejected(verifier: JwtVerifier) -> None:
    secret = "a-shared-secret-long-enough-for-hs384-" + "s" * 16
    token = jwt.encode(claims(), secret, algorithm="HS384", headers={"kid": "ec-1"})
    assert rejected(verifier, bearer(token)) == "algorithm-not-allowed"


def test_hmac_stays_refused_even_if_settings_list_it(jwks_file: Path, ec_key: Any) -> None:
    # Settings validation refuses HS*; a hand-built AuthSettings must not reopen the door.
    auth = AuthSettings.model_construct(
        require_jwt=True,
        algorithms=("HS256", "ES384"),
        clock_skew_s=60,
        max_token_lifetime_s=3600,
        trusted_clients=(TrustedClient(issuer=ISSUER, jwks_file=str(jwks_file)),),
        admin_token_sha256="",
    )
    verifier = JwtVerifier(auth, MemoryTtlStore(), clock=lambda: NOW)
    public_pem = ec_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    token = hand_made({"alg": "HS256", "typ": "JWT", "kid": "ec-1"}, claims(), public_pem)
    assert rejected(verifier, bearer(token)) == "algorithm-not-allowed"


def test_algorithm_not_in_settings_is_rejected(
    make_verifier: Callable[..., JwtVerifier], rsa_key: Any
) -> None:
    verifier = make_verifier(algorithms=("ES384",))
    token = sign(rsa_key, claims(), alg="RS384", kid="rsa-1")
    assert rejected(verifier, bearer(token)) == "algorithm-not-allowed"


def test_header_alg_that_does_not_fit_the_key_is_rejected(
    verifier: JwtVerifier, rsa_key: Any
) -> None:
    # RSA-signed, but naming the EC key's kid.
    token = sign(rsa_key, claims(), alg="RS384", kid="ec-1")
    assert rejected(verifier, bearer(token)) == "algorithm-not-allowed"


# Issuer, key, signature


def test_unknown_issuer_is_rejected(verifier: JwtVerifier, ec_key: Any) -> None:
    token = sign(ec_key, claims(iss="https://evil.example.org"))
    assert rejected(verifier, bearer(token)) == "untrusted-issuer"


def test_missing_issuer_is_rejected(verifier: JwtVerifier, ec_key: Any) -> None:
    assert rejected(verifier, bearer(sign(ec_key, claims(iss=None)))) == "untrusted-issuer"


def test_unknown_kid_is_rejected(verifier: JwtVerifier, ec_key: Any) -> None:
    assert rejected(verifier, bearer(sign(ec_key, claims(), kid="no-such-key"))) == "unknown-key"


def test_signature_by_another_key_is_rejected(verifier: JwtVerifier) -> None:
    impostor = ec.generate_private_key(ec.SECP384R1())
    assert rejected(verifier, bearer(sign(impostor, claims()))) == "bad-signature"


def test_tampered_payload_is_rejected(verifier: JwtVerifier, ec_key: Any) -> None:
    header, _, signature = sign(ec_key, claims()).split(".")
    forged = b64(json.dumps(claims(aud=AUD, exp=int(NOW) + 600)).encode())
    assert rejected(verifier, bearer(f"{header}.{forged}.{signature}")) == "bad-signature"


# Key rotation and jku


def test_rotated_key_is_fetched_and_refresh_is_rate_limited(
    httpserver: HTTPServer, ec_key: Any
) -> None:
    monotonic = [100.0]
    url = httpserver.url_for("/jwks.json")
    httpserver.expect_request("/jwks.json").respond_with_json(
        {"keys": [public_jwk(ec_key, "ec-1", "ES384")]}
    )
    auth = auth_settings(TrustedClient(issuer=ISSUER, jwks_url=url))
    keys = KeyStore(auth.trusted_clients, clock=lambda: monotonic[0], refresh_interval_s=30)
    verifier = JwtVerifier(auth, MemoryTtlStore(), clock=lambda: NOW, keys=keys)
    assert verifier.verify(bearer(sign(ec_key, claims())), AUD).issuer == ISSUER

    rotated = ec.generate_private_key(ec.SECP384R1())
    httpserver.clear_all_handlers()
    httpserver.expect_request("/jwks.json").respond_with_json(
        {"keys": [public_jwk(rotated, "ec-2", "ES384")]}
    )
    monotonic[0] += 31
    assert verifier.verify(bearer(sign(rotated, claims(), kid="ec-2")), AUD).issuer == ISSUER
    assert len(httpserver.log) == 2

    for _ in range(5):  # unknown kids right after a refresh do not reach the client's server
        assert rejected(verifier, bearer(sign(rotated, claims(), kid="ec-3"))) == "unknown-key"
    assert len(httpserver.log) == 2


def test_jku_not_on_the_allowlist_is_not_fetched(httpserver: HTTPServer, jwks_file: Path) -> None:
    attacker = ec.generate_private_key(ec.SECP384R1())
    httpserver.expect_request("/attacker-jwks.json").respond_with_json(
        {"keys": [public_jwk(attacker, "attacker-1", "ES384")]}
    )
    auth = auth_settings(TrustedClient(issuer=ISSUER, jwks_file=str(jwks_file)))
    verifier = JwtVerifier(auth, MemoryTtlStore(), clock=lambda: NOW)
    token = sign(
        attacker, claims(), kid="attacker-1", jku=httpserver.url_for("/attacker-jwks.json")
    )
    assert rejected(verifier, bearer(token)) == "unknown-key"
    assert len(httpserver.log) == 0


def test_jku_on_the_allowlist_is_used(httpserver: HTTPServer, jwks_file: Path) -> None:
    client_key = ec.generate_private_key(ec.SECP384R1())
    jku = httpserver.url_for("/client-jwks.json")
    httpserver.expect_request("/client-jwks.json").respond_with_json(
        {"keys": [public_jwk(client_key, "client-1", "ES384")]}
    )
    auth = auth_settings(
        TrustedClient(issuer=ISSUER, jwks_file=str(jwks_file), jku_allowlist=(jku,))
    )
    verifier = JwtVerifier(auth, MemoryTtlStore(), clock=lambda: NOW)
    token = sign(client_key, claims(), kid="client-1", jku=jku)
    assert verifier.verify(bearer(token), AUD).issuer == ISSUER
    assert len(httpserver.log) == 1


# Claims: aud, exp, iat, lifetime, jti


@pytest.mark.parametrize(
    "aud",
    [
        "https://cds.example.org/cds-services/psychopharm-order-select",
        "https://cds.example.org/cds-services",
        ["https://other.example.org"],
        None,
    ],
    ids=["other-service", "discovery-url", "array-without-us", "missing"],
)
def test_wrong_audience_is_rejected(verifier: JwtVerifier, ec_key: Any, aud: Any) -> None:
    assert rejected(verifier, bearer(sign(ec_key, claims(aud=aud)))) == "wrong-audience"


def test_expired_token_is_rejected(verifier: JwtVerifier, ec_key: Any) -> None:
    exp = int(NOW) - 61  # clock_skew_s is 60
    assert rejected(verifier, bearer(sign(ec_key, claims(exp=exp, iat=exp - 300)))) == "expired"


def test_token_expired_within_the_skew_is_accepted(verifier: JwtVerifier, ec_key: Any) -> None:
    exp = int(NOW) - 59
    assert verifier.verify(bearer(sign(ec_key, claims(exp=exp, iat=exp - 300))), AUD)


def test_token_issued_in_the_future_is_rejected(verifier: JwtVerifier, ec_key: Any) -> None:
    iat = int(NOW) + 61
    token = sign(ec_key, claims(iat=iat, exp=iat + 300))
    assert rejected(verifier, bearer(token)) == "issued-in-future"


def test_token_issued_just_ahead_within_the_skew_is_accepted(
    verifier: JwtVerifier, ec_key: Any
) -> None:
    iat = int(NOW) + 59
    assert verifier.verify(bearer(sign(ec_key, claims(iat=iat, exp=iat + 300))), AUD)


def test_not_before_in_the_future_is_rejected(verifier: JwtVerifier, ec_key: Any) -> None:
    token = sign(ec_key, claims(nbf=int(NOW) + 120))
    assert rejected(verifier, bearer(token)) == "issued-in-future"


def test_token_living_too_long_is_rejected(verifier: JwtVerifier, ec_key: Any) -> None:
    token = sign(ec_key, claims(exp=int(NOW) + 3601))  # max_token_lifetime_s is 3600
    assert rejected(verifier, bearer(token)) == "token-lifetime-too-long"


def test_token_living_exactly_the_maximum_is_accepted(verifier: JwtVerifier, ec_key: Any) -> None:
    assert verifier.verify(bearer(sign(ec_key, claims(exp=int(NOW) + 3600))), AUD)


@pytest.mark.parametrize("claim", ["exp", "iat", "jti"])
def test_required_claim_missing_is_rejected(verifier: JwtVerifier, ec_key: Any, claim: str) -> None:
    assert rejected(verifier, bearer(sign(ec_key, claims(**{claim: None})))) == "malformed-token"


def test_non_numeric_exp_is_rejected(verifier: JwtVerifier, ec_key: Any) -> None:
    token = sign(ec_key, claims(exp="tomorrow"))
    assert rejected(verifier, bearer(token)) == "malformed-token"


# Replay protection, on both stores


@pytest.fixture
def redis_store() -> Iterator[RedisTtlStore]:
    prefix = f"psychopharm:test-{uuid.uuid4().hex}:"
    store = RedisTtlStore(REDIS_URL, prefix=prefix)
    yield store
    store.close()
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=prefix + "*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def replay_store(request: pytest.FixtureRequest) -> TtlStore:
    if request.param == "memory":
        return MemoryTtlStore()
    store: TtlStore = request.getfixturevalue("redis_store")
    return store


def test_replayed_token_is_rejected(
    make_verifier: Callable[..., JwtVerifier], ec_key: Any, replay_store: TtlStore
) -> None:
    verifier = make_verifier(replay_store)
    token = bearer(sign(ec_key, claims()))
    assert verifier.verify(token, AUD)
    assert rejected(verifier, token) == "replayed-token"


def test_reused_jti_in_a_new_token_is_rejected(
    make_verifier: Callable[..., JwtVerifier], ec_key: Any, replay_store: TtlStore
) -> None:
    verifier = make_verifier(replay_store)
    assert verifier.verify(bearer(sign(ec_key, claims(jti="nonce-1"))), AUD)
    again = sign(ec_key, claims(jti="nonce-1", iat=int(NOW) - 5))
    assert rejected(verifier, bearer(again)) == "replayed-token"


def test_replay_is_shared_between_workers(
    make_verifier: Callable[..., JwtVerifier], ec_key: Any, replay_store: TtlStore
) -> None:
    token = bearer(sign(ec_key, claims()))
    assert make_verifier(replay_store).verify(token, AUD)
    assert rejected(make_verifier(replay_store), token) == "replayed-token"


def test_rejected_token_does_not_burn_its_jti(
    make_verifier: Callable[..., JwtVerifier], ec_key: Any
) -> None:
    verifier = make_verifier()
    payload = claims()
    assert rejected(verifier, bearer(sign(ec_key, payload)), "https://wrong.example.org") == (
        "wrong-audience"
    )
    assert verifier.verify(bearer(sign(ec_key, payload)), AUD)


def test_replay_store_down_fails_closed(
    make_verifier: Callable[..., JwtVerifier], ec_key: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    verifier = make_verifier(RedisTtlStore(f"redis://127.0.0.1:{port}/0"))
    token = sign(ec_key, claims())
    with caplog.at_level(logging.WARNING, logger="cds_service.web.auth"):
        assert rejected(verifier, bearer(token)) == "replay-store-unavailable"
    assert any(r.levelno == logging.ERROR for r in caplog.records)
    assert token not in caplog.text


# Logging


def test_failures_are_logged_with_reason_but_never_the_token(
    verifier: JwtVerifier, ec_key: Any, caplog: pytest.LogCaptureFixture
) -> None:
    payload = claims()
    token = sign(ec_key, payload)
    with caplog.at_level(logging.WARNING, logger="cds_service.web.auth"):
        rejected(verifier, bearer(token), "https://wrong.example.org")
    (record,) = caplog.records
    assert record.reason == "wrong-audience"  # type: ignore[attr-defined]
    assert record.issuer == ISSUER  # type: ignore[attr-defined]
    assert record.kid == "ec-1"  # type: ignore[attr-defined]
    assert record.jti == payload["jti"]  # type: ignore[attr-defined]
    assert token not in caplog.text
    assert all(token not in str(v) for v in vars(record).values())


# Admin token


ADMIN_TOKEN = "admin-" + "x" * 40


def admin_settings() -> AuthSettings:
    return AuthSettings(admin_token_sha256=hashlib.sha256(ADMIN_TOKEN.encode()).hexdigest())


def test_admin_token_is_accepted() -> None:
    check_admin(bearer(ADMIN_TOKEN), admin_settings())


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "missing-token"),
        ("Basic " + ADMIN_TOKEN, "malformed-token"),
        (bearer(ADMIN_TOKEN + "y"), "invalid-admin-token"),
        (bearer(ADMIN_TOKEN[:-1]), "invalid-admin-token"),
    ],
    ids=["missing", "not-bearer", "longer", "shorter"],
)
def test_admin_token_rejected(header: str | None, code: str) -> None:
    with pytest.raises(AuthError) as info:
        check_admin(header, admin_settings())
    assert info.value.code == code


def test_ehr_jwt_does_not_open_the_admin_api(ec_key: Any) -> None:
    with pytest.raises(AuthError) as info:
        check_admin(bearer(sign(ec_key, claims())), admin_settings())
    assert info.value.code == "invalid-admin-token"


def test_admin_api_is_off_without_a_configured_hash() -> None:
    with pytest.raises(AuthError) as info:
        check_admin(bearer(ADMIN_TOKEN), AuthSettings())
    assert info.value.code == "admin-disabled"
