"""Where the clients' public keys come from: pinned files, cached URLs, allowlisted jku only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from pytest_httpserver import HTTPServer

from cds_service.errors import ConfigError
from cds_service.settings import TrustedClient
from cds_service.web.jwks import KeyStore, parse_jwks

ISSUER = "https://ehr.example.org"


class FakeClock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


def ec_jwk(kid: str, **extra: Any) -> dict[str, Any]:
    key = ec.generate_private_key(ec.SECP384R1())
    jwk: dict[str, Any] = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
    return {**jwk, "kid": kid, "use": "sig", "alg": "ES384", **extra}


def jwks(*keys: dict[str, Any]) -> dict[str, Any]:
    return {"keys": list(keys)}


def write_jwks(path: Path, *keys: dict[str, Any]) -> Path:
    path.write_text(json.dumps(jwks(*keys)), encoding="utf-8")
    return path


def url_client(url: str, **extra: Any) -> TrustedClient:
    return TrustedClient(issuer=ISSUER, jwks_url=url, **extra)


# parse_jwks


def test_parse_keeps_only_public_members_of_signing_keys() -> None:
    private = ec.generate_private_key(ec.SECP384R1())
    with_d = ECAlgorithm.to_jwk(private, as_dict=True)
    rsa_pub = RSAAlgorithm.to_jwk(
        rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key(), as_dict=True
    )
    keys = parse_jwks(
        jwks(
            {**with_d, "kid": "ec"},
            {**rsa_pub, "kid": "rsa"},
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            {**ec_jwk("enc"), "use": "enc"},
            {**ec_jwk("x"), "kid": ""},
            {"kty": "EC", "crv": "P-999", "x": "AA", "y": "AA", "kid": "broken"},
            "not a key",
        ),
        "test",
    )
    assert sorted(keys) == ["ec", "rsa"]
    assert "d" not in keys["ec"]


def test_parse_keeps_the_first_of_duplicate_kids() -> None:
    first, second = ec_jwk("same"), ec_jwk("same")
    assert parse_jwks(jwks(first, second), "test")["same"]["x"] == first["x"]


@pytest.mark.parametrize("document", [[], {"keys": "nope"}, {"kid": "a"}, "text"])
def test_parse_rejects_what_is_not_a_jwk_set(document: Any) -> None:
    with pytest.raises(ValueError):
        parse_jwks(document, "test")


# jwks_file


def test_file_keys_are_loaded_at_start(tmp_path: Path) -> None:
    key = ec_jwk("file-1")
    path = write_jwks(tmp_path / "jwks.json", key)
    store = KeyStore([TrustedClient(issuer=ISSUER, jwks_file=str(path))])
    path.unlink()  # loaded already: the file is not needed per call
    assert store.find_key(ISSUER, "file-1") == {k: key[k] for k in key}


@pytest.mark.parametrize("content", [None, "{not json", '{"keys": 3}'])
def test_unreadable_file_fails_the_start(tmp_path: Path, content: str | None) -> None:
    path = tmp_path / "jwks.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match="jwks_file"):
        KeyStore([TrustedClient(issuer=ISSUER, jwks_file=str(path))])


def test_an_issuer_listed_twice_fails_the_start(tmp_path: Path) -> None:
    path = write_jwks(tmp_path / "jwks.json", ec_jwk("a"))
    client = TrustedClient(issuer=ISSUER, jwks_file=str(path))
    with pytest.raises(ConfigError, match="listed twice"):
        KeyStore([client, client])


def test_unknown_issuer_has_no_keys(tmp_path: Path) -> None:
    path = write_jwks(tmp_path / "jwks.json", ec_jwk("a"))
    store = KeyStore([TrustedClient(issuer=ISSUER, jwks_file=str(path))])
    assert not store.is_trusted("https://other.example.org")
    assert store.find_key("https://other.example.org", "a") is None


# jwks_url


def test_url_is_fetched_on_first_use_then_cached(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/jwks.json").respond_with_json(jwks(ec_jwk("k1"), ec_jwk("k2")))
    store = KeyStore([url_client(httpserver.url_for("/jwks.json"))], clock=FakeClock())
    assert len(httpserver.log) == 0
    assert store.find_key(ISSUER, "k1") is not None
    assert store.find_key(ISSUER, "k2") is not None
    assert store.find_key(ISSUER, "k1") is not None
    assert len(httpserver.log) == 1


def test_unknown_kid_refresh_is_rate_limited(httpserver: HTTPServer) -> None:
    clock = FakeClock()
    httpserver.expect_request("/jwks.json").respond_with_json(jwks(ec_jwk("old")))
    store = KeyStore(
        [url_client(httpserver.url_for("/jwks.json"))], clock=clock, refresh_interval_s=30
    )
    assert store.find_key(ISSUER, "old") is not None
    clock.now += 31
    for _ in range(20):  # a burst of forged kids costs one fetch, not twenty
        assert store.find_key(ISSUER, "forged") is None
    assert len(httpserver.log) == 2
    clock.now += 29.9
    assert store.find_key(ISSUER, "forged") is None
    assert len(httpserver.log) == 2
    clock.now += 0.2
    assert store.find_key(ISSUER, "forged") is None
    assert len(httpserver.log) == 3


def test_rotated_key_is_picked_up_after_the_interval(httpserver: HTTPServer) -> None:
    clock = FakeClock()
    httpserver.expect_request("/jwks.json").respond_with_json(jwks(ec_jwk("old")))
    store = KeyStore(
        [url_client(httpserver.url_for("/jwks.json"))], clock=clock, refresh_interval_s=30
    )
    assert store.find_key(ISSUER, "new") is None
    httpserver.clear_all_handlers()
    httpserver.expect_request("/jwks.json").respond_with_json(jwks(ec_jwk("new")))
    assert store.find_key(ISSUER, "new") is None  # too soon after the first fetch
    clock.now += 30
    assert store.find_key(ISSUER, "new") is not None


def test_cached_keys_survive_a_failing_refresh(httpserver: HTTPServer) -> None:
    clock = FakeClock()
    httpserver.expect_request("/jwks.json").respond_with_json(jwks(ec_jwk("k1")))
    store = KeyStore(
        [url_client(httpserver.url_for("/jwks.json"))],
        clock=clock,
        refresh_interval_s=30,
        max_age_s=600,
    )
    assert store.find_key(ISSUER, "k1") is not None
    httpserver.clear_all_handlers()
    httpserver.expect_request("/jwks.json").respond_with_data("down", status=503)
    clock.now += 601  # stale: refetch is attempted, fails, the cached key stays usable
    assert store.find_key(ISSUER, "k1") is not None
    assert len(httpserver.log) == 2


def test_unreachable_url_means_no_key_not_a_crash(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/jwks.json").respond_with_data("oops", status=500)
    store = KeyStore([url_client(httpserver.url_for("/jwks.json"))], clock=FakeClock())
    assert store.find_key(ISSUER, "k1") is None


def test_redirects_are_not_followed(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/jwks.json").respond_with_data(
        "", status=302, headers={"Location": httpserver.url_for("/elsewhere.json")}
    )
    httpserver.expect_request("/elsewhere.json").respond_with_json(jwks(ec_jwk("k1")))
    store = KeyStore([url_client(httpserver.url_for("/jwks.json"))], clock=FakeClock())
    assert store.find_key(ISSUER, "k1") is None
    assert [request.path for request, _ in httpserver.log] == ["/jwks.json"]


# jku


def test_jku_on_the_allowlist_is_used(tmp_path: Path, httpserver: HTTPServer) -> None:
    jku = httpserver.url_for("/client-jwks.json")
    httpserver.expect_request("/client-jwks.json").respond_with_json(jwks(ec_jwk("via-jku")))
    path = write_jwks(tmp_path / "pinned.json", ec_jwk("pinned"))
    client = TrustedClient(issuer=ISSUER, jwks_file=str(path), jku_allowlist=(jku,))
    store = KeyStore([client], clock=FakeClock())
    assert store.find_key(ISSUER, "via-jku", jku) is not None
    assert store.find_key(ISSUER, "pinned", jku) is not None  # the pinned set still counts


@pytest.mark.parametrize(
    "suffix", ["/other-jwks.json", "/client-jwks.json/", "/client-jwks.json?x=1"]
)
def test_jku_off_the_allowlist_is_never_fetched(
    tmp_path: Path, httpserver: HTTPServer, suffix: str
) -> None:
    allowed = httpserver.url_for("/client-jwks.json")
    path = write_jwks(tmp_path / "pinned.json", ec_jwk("pinned"))
    client = TrustedClient(issuer=ISSUER, jwks_file=str(path), jku_allowlist=(allowed,))
    store = KeyStore([client], clock=FakeClock())
    jku = httpserver.url_for(suffix)
    assert store.find_key(ISSUER, "via-jku", jku) is None
    assert store.find_key(ISSUER, "pinned", jku) is not None
    assert len(httpserver.log) == 0


def test_clients_sharing_a_url_share_one_cache(httpserver: HTTPServer) -> None:
    url = httpserver.url_for("/jwks.json")
    httpserver.expect_request("/jwks.json").respond_with_json(jwks(ec_jwk("k1")))
    store = KeyStore(
        [
            TrustedClient(issuer=ISSUER, jwks_url=url),
            TrustedClient(issuer="https://ehr2.example.org", jwks_url=url),
        ],
        clock=FakeClock(),
    )
    assert store.find_key(ISSUER, "k1") is not None
    assert store.find_key("https://ehr2.example.org", "k1") is not None
    assert len(httpserver.log) == 1
