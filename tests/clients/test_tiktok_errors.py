"""TikTok envelope → error class, for every code and status the reference lists."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from cancelsync.clients.tiktok.envelope import raise_for_response
from cancelsync.errors import (
    AlreadyAppliedError,
    ApiError,
    AuthError,
    ConfigApiError,
    FatalApiError,
    NotCancellableError,
    NotFoundError,
    RetryableApiError,
)

REQUEST_ID = "202611011200000A1B2C3D4E5F6071829"


def _response(
    status: int,
    code: int | None,
    message: str = "something happened",
    *,
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
) -> requests.Response:
    resp = requests.Response()
    resp.status_code = status
    resp.headers.update({"Content-Type": "application/json", **(headers or {})})
    if raw is None:
        payload: dict[str, Any] = {"message": message, "request_id": REQUEST_ID}
        if code is not None:
            payload["code"] = code
        payload["data"] = {}
        raw = json.dumps(payload).encode()
    resp._content = raw
    return resp


def _raised(resp: requests.Response) -> ApiError:
    with pytest.raises(ApiError) as info:
        raise_for_response(resp)
    return info.value


# (HTTP status, code, exact error class)
TABLE: list[tuple[int, int | None, type[ApiError]]] = [
    (200, 36009002, RetryableApiError),
    (429, 36009002, RetryableApiError),
    (429, None, RetryableApiError),
    (200, 36009003, RetryableApiError),
    (500, 36009003, RetryableApiError),
    (502, None, RetryableApiError),
    (503, 36009003, RetryableApiError),
    (200, 36009007, RetryableApiError),
    (200, 25001028, RetryableApiError),
    (200, 10006402, RetryableApiError),
    (200, 105002, AuthError),
    (401, 105002, AuthError),
    (200, 101000, AuthError),
    (200, 36004001, AuthError),
    (200, 36004004, AuthError),
    (200, 105005, ConfigApiError),
    (200, 36009033, ConfigApiError),
    (200, 25020005, ConfigApiError),
    (200, 25001014, ConfigApiError),
    (200, 25001015, ConfigApiError),
    (200, 25001020, ConfigApiError),
    (200, 25001021, ConfigApiError),
    (200, 106001, FatalApiError),
    (401, 106001, FatalApiError),
    (200, 106013, FatalApiError),
    (200, 25001045, NotCancellableError),
    (200, 25001046, NotCancellableError),
    (200, 25005010, NotCancellableError),
    (200, 25005011, NotCancellableError),
    (200, 25001051, AlreadyAppliedError),
    (200, 25001011, AlreadyAppliedError),
    (200, 25001001, FatalApiError),
    (200, 36009009, FatalApiError),
    (200, 36009014, FatalApiError),
    (200, 12345678, FatalApiError),
    (401, None, AuthError),
    (404, None, NotFoundError),
]


@pytest.mark.parametrize(("status", "code", "expected"), TABLE)
def test_code_and_status_map_to_error_class(
    status: int, code: int | None, expected: type[ApiError]
) -> None:
    """Each documented code/status raises exactly the class the caller acts on."""
    error = _raised(_response(status, code))
    assert type(error) is expected
    assert error.platform == "tiktok"
    assert error.status == status
    assert error.code == code
    assert error.request_id == REQUEST_ID
    assert error.hint


def test_success_envelope_does_not_raise() -> None:
    """HTTP 200 with code 0 is success."""
    raise_for_response(_response(200, 0, "Success"))


def test_expired_access_token_is_refreshable_and_reauthorize_codes_are_not() -> None:
    """105002 asks for a refresh; 101000 and 36004001 ask for a new consent."""
    assert isinstance(expired := _raised(_response(200, 105002)), AuthError)
    assert expired.refreshable
    for code in (101000, 36004001):
        error = _raised(_response(200, code))
        assert isinstance(error, AuthError)
        assert not error.refreshable
        assert "cancelsync connect --store NAME --auth-code CODE" in (error.hint or "")


def test_retry_after_is_read_from_429() -> None:
    """A 429's Retry-After header becomes ``retry_after`` seconds."""
    error = _raised(_response(429, 36009002, headers={"Retry-After": "7"}))
    assert isinstance(error, RetryableApiError)
    assert error.retry_after == 7.0


def test_error_carries_message_code_and_request_id_in_text() -> None:
    """The rendered error names the message, HTTP status, code and request id."""
    text = str(_raised(_response(200, 25001045, "The order has been shipped")))
    assert "The order has been shipped" in text
    assert "code 25001045" in text
    assert REQUEST_ID in text
    assert "Seller Center" in text


def test_reason_status_mismatch_hint_points_at_reasons_command() -> None:
    """25001021 says to pick the key for the order status and names the command."""
    error = _raised(_response(200, 25001021, "reason does not match order status"))
    assert "order status" in (error.hint or "")
    assert "cancelsync reasons" in (error.hint or "")


@pytest.mark.parametrize(
    ("message", "expected", "hint_word"),
    [
        ("Invalid parameters: timestamp is expired", ConfigApiError, "clock"),
        ("Invalid parameters: shop_cipher not required", ConfigApiError, "shop_cipher"),
        (
            "Invalid parameters: app_key is missing or invalid",
            ConfigApiError,
            "app_key",
        ),
        ("Invalid parameters: page_token is invalid", FatalApiError, "parameter"),
    ],
)
def test_invalid_params_branches_on_message(
    message: str, expected: type[ApiError], hint_word: str
) -> None:
    """36009004 is a clock, shop_cipher or app_key problem depending on its message."""
    error = _raised(_response(200, 36009004, message))
    assert type(error) is expected
    assert hint_word in (error.hint or "")


def test_html_page_on_200_is_retryable_with_a_base_url_hint() -> None:
    """An HTML page on HTTP 200 (a captive portal) is transient, never an event's fault."""
    error = _raised(_response(200, None, raw=b"<html>captive portal</html>"))
    assert type(error) is RetryableApiError
    assert "captive portal" in error.message
    assert "api_base_url" in (error.hint or "")


def test_json_without_a_code_on_200_is_fatal_with_a_base_url_hint() -> None:
    """JSON that is not TikTok's envelope is not TikTok: check the base URL."""
    error = _raised(_response(200, None, raw=b'{"hello": "world"}'))
    assert type(error) is FatalApiError
    assert "api_base_url" in (error.hint or "")


def test_request_id_falls_back_to_the_logid_header() -> None:
    """Without an envelope the request id comes from ``x-tt-logid``."""
    resp = _response(503, None, raw=b"busy", headers={"X-Tt-Logid": "LOGID1"})
    assert _raised(resp).request_id == "LOGID1"
