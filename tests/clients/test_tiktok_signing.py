"""TikTok request and webhook signing against every reference vector."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cancelsync.clients.tiktok.signing import (
    sign_request,
    string_to_sign,
    verify_webhook,
    webhook_signature,
)

# A copy of the reference's vectors lives in the repository: a fresh clone has nothing
# beside it, and every vector must run (never skipped).
VECTORS_PATH = (
    Path(__file__).resolve().parents[1] / "fixtures" / "tiktok" / "signing-vectors.json"
)
MISSING_REASON = f"signing vectors not found at {VECTORS_PATH}"


def _load() -> dict[str, Any] | None:
    if not VECTORS_PATH.is_file():
        return None
    loaded: dict[str, Any] = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))
    return loaded


VECTORS = _load()


def _params(kind: str, needs: str | None = None) -> list[Any]:
    if VECTORS is None:
        return [
            # A missing file fails the run rather than skipping: every vector must run.
            pytest.param(None, id="missing")
        ]
    return [
        pytest.param(v, id=v["name"])
        for v in VECTORS[kind]
        if needs is None or needs in v
    ]


def _body(vector: dict[str, Any]) -> bytes | None:
    body = vector["body"]
    return None if body is None else body.encode("utf-8")


def test_the_vector_file_holds_every_documented_vector() -> None:
    """The file still holds V0-V4 and W0, so no vector silently drops out of the run."""
    assert VECTORS is not None, MISSING_REASON
    names = {v["name"] for v in VECTORS["request_vectors"]}
    assert {"V0", "V1", "V2", "V3", "V4"} <= names
    assert {v["name"] for v in VECTORS["webhook_vectors"]} >= {"W0"}


@pytest.mark.parametrize("vector", _params("request_vectors"))
def test_request_vector_sign(vector: dict[str, Any]) -> None:
    """Every request vector signs to its expected value."""
    sign = sign_request(
        vector["app_secret"],
        vector["path"],
        vector["query"],
        _body(vector),
        vector["content_type"],
    )
    assert sign == vector["expected_sign"]


@pytest.mark.parametrize("vector", _params("request_vectors"))
def test_request_vector_ignores_sign_and_access_token(vector: dict[str, Any]) -> None:
    """Params listed as ignored (V2's access_token) and a stale sign never change it."""
    query = {
        **vector["query"],
        **vector.get("ignored_query", {}),
        "access_token": "SHOULD_BE_IGNORED",
        "sign": "stale",
    }
    sign = sign_request(
        vector["app_secret"],
        vector["path"],
        query,
        _body(vector),
        vector["content_type"],
    )
    assert sign == vector["expected_sign"]


@pytest.mark.parametrize("vector", _params("request_vectors", "string_to_sign"))
def test_request_vector_string_to_sign(vector: dict[str, Any]) -> None:
    """The string to sign matches the vector's where the vector spells it out (V2)."""
    query = {**vector["query"], **vector.get("ignored_query", {})}
    message = string_to_sign(
        vector["app_secret"],
        vector["path"],
        query,
        _body(vector),
        vector["content_type"],
    )
    assert message == vector["string_to_sign"].encode("utf-8")


@pytest.mark.parametrize("vector", _params("webhook_vectors"))
def test_webhook_vector(vector: dict[str, Any]) -> None:
    """Every webhook vector (W0) computes and verifies its Authorization value."""
    body = vector["body"].encode("utf-8")
    expected = vector["expected_authorization"]
    assert webhook_signature(vector["app_key"], vector["app_secret"], body) == expected
    assert verify_webhook(vector["app_key"], vector["app_secret"], body, expected)


@pytest.mark.parametrize("vector", _params("webhook_vectors"))
def test_webhook_rejects_a_changed_body_or_signature(vector: dict[str, Any]) -> None:
    """A re-serialised body, a wrong secret or a truncated signature fails to verify."""
    body = vector["body"].encode("utf-8")
    expected = vector["expected_authorization"]
    reserialised = json.dumps(json.loads(body)).encode("utf-8")
    assert not verify_webhook(
        vector["app_key"], vector["app_secret"], reserialised, expected
    )
    assert not verify_webhook(vector["app_key"], "wrong", body, expected)
    assert not verify_webhook(
        vector["app_key"], vector["app_secret"], body, expected[:-1]
    )


def test_multipart_body_is_not_signed() -> None:
    """A multipart upload body stays out of the sign; a JSON body is part of it."""
    query = {"app_key": "k", "timestamp": "1700000000"}
    bare = sign_request("s", "/p", query, None)
    assert (
        sign_request("s", "/p", query, b"--boundary", "multipart/form-data; b=x")
        == bare
    )
    assert sign_request("s", "/p", query, b"{}") != bare


def test_keys_sort_in_byte_order_and_values_are_signed_decoded() -> None:
    """Keys sort by bytes (upper case first) and a page token is signed unescaped."""
    query = {"b": "2", "a": "1", "Z": "0", "page_token": "ab+/cd=="}
    message = string_to_sign("s", "/p", query, None)
    assert message == b"s/pZ0a1b2page_tokenab+/cd==s"
