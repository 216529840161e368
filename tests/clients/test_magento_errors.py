"""Tests for MagentoClient.raise_for_response: status/message → error class and hint."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import requests
import responses

from cancelsync.clients.http import RetryPolicy
from cancelsync.clients.magento import (
    BearerAuth,
    MagentoAuthError,
    MagentoClient,
    fill_placeholders,
    is_already_applied,
    oauth1_auth,
)
from cancelsync.errors import (
    AlreadyAppliedError,
    ApiError,
    AuthError,
    FatalApiError,
    NotFoundError,
    OutcomeUnknownError,
    RetryableApiError,
)

BASE = "https://magento.test"
API = f"{BASE}/rest/default/V1"
CONSUMER_401 = {
    "message": "The consumer isn't authorized to access %resources.",
    "parameters": {"resources": "Magento_Sales::actions_view"},
}


def make_client(mode: str = "oauth1", attempts: int = 1) -> MagentoClient:
    auth = (
        BearerAuth("bearer-token-value")
        if mode == "bearer"
        else oauth1_auth("ck", "cs", "at", "ats")
    )
    return MagentoClient(
        requests.Session(),
        base_url=BASE,
        store_code="default",
        timeout=5,
        auth=auth,
        retry=RetryPolicy(attempts=attempts, sleep=lambda _s: None),
    )


def refund(client: MagentoClient) -> int:
    return client.refund_order(
        7,
        items=[(1, Decimal("1"))],
        shipping_amount=Decimal("0"),
        return_to_stock_items=(),
        comment="cancelsync test",
    )


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def fail_with(
    rsps: responses.RequestsMock,
    status: int,
    body: Any,
    *,
    mode: str = "oauth1",
    headers: dict[str, str] | None = None,
) -> ApiError:
    text = body if isinstance(body, str) else json.dumps(body)
    rsps.add(
        responses.GET, f"{API}/orders/7", body=text, status=status, headers=headers
    )
    with make_client(mode) as client, pytest.raises(ApiError) as excinfo:
        client.get_order(7)
    return excinfo.value


ENTITY_404 = {
    "message": "The entity that was requested doesn't exist. Verify the entity and try "
    "again."
}


@pytest.mark.parametrize(
    ("status", "body", "mode", "headers", "cls", "in_message", "in_hint"),
    [
        (400, {"message": "Bad %1", "parameters": ["x"]}, "oauth1", None,
         FatalApiError, "Bad x", None),
        (401, CONSUMER_401, "bearer", None, AuthError,
         "isn't authorized to access Magento_Sales::actions_view",
         "oauth/consumer/enable_integration_as_bearer=1"),
        (401, CONSUMER_401, "oauth1", None, AuthError,
         "Magento_Sales::actions_view", "grant the integration these API resources"),
        (401, {"message": "The signature is invalid. Verify and try again."}, "oauth1",
         None, AuthError, "signature is invalid", "access_token_secret"),
        (403, {"message": "Forbidden"}, "oauth1", None, FatalApiError, "Forbidden",
         "grant"),
        (404, ENTITY_404, "oauth1", None, NotFoundError, "doesn't exist", None),
        (404, {"message": "Request does not match any route."}, "oauth1", None,
         NotFoundError, "any route", "store_code"),
        (429, {"message": "Too Many Requests"}, "oauth1", {"Retry-After": "7"},
         RetryableApiError, "Too Many", None),
        (429, {"message": "Too Many Requests"}, "oauth1", None, RetryableApiError,
         "Too Many", None),
        (500, {"message": "Internal Error. Details are available in Magento log file. "
               "Report ID: webapi-6543"}, "oauth1", None, RetryableApiError,
         "webapi-6543", None),
        (502, "<html><body><h1>502 Bad Gateway</h1>\n<hr>nginx</body></html>",
         "oauth1", None, RetryableApiError, "502 Bad Gateway", None),
        (503, {"message": "Service Unavailable"}, "oauth1", {"Retry-After": "2"},
         RetryableApiError, "Service Unavailable", None),
        (504, "", "oauth1", None, RetryableApiError, "HTTP 504 with a non-JSON body",
         None),
    ],
)  # fmt: skip
def test_status_maps_to_error_class(
    rsps: responses.RequestsMock,
    status: int,
    body: Any,
    mode: str,
    headers: dict[str, str] | None,
    cls: type[ApiError],
    in_message: str,
    in_hint: str | None,
) -> None:
    """Each status (and auth mode) raises its error class with the filled message."""
    exc = fail_with(rsps, status, body, mode=mode, headers=headers)
    assert type(exc) is cls or (cls is AuthError and isinstance(exc, MagentoAuthError))
    assert exc.status == status
    assert exc.platform == "magento"
    assert in_message in exc.message
    if in_hint is None:
        assert exc.hint is None or status == 404
    else:
        assert exc.hint is not None
        assert in_hint in exc.hint


def test_retry_after_is_parsed(rsps: responses.RequestsMock) -> None:
    """A 429's Retry-After becomes retry_after; without it retry_after is None."""
    exc = fail_with(rsps, 429, {"message": "slow down"}, headers={"Retry-After": "7"})
    assert isinstance(exc, RetryableApiError)
    assert exc.retry_after == 7.0
    rsps.reset()
    exc = fail_with(rsps, 429, {"message": "slow down"})
    assert isinstance(exc, RetryableApiError)
    assert exc.retry_after is None


def test_bearer_401_hint_names_the_setting(rsps: responses.RequestsMock) -> None:
    """In bearer mode the misleading 401 points at the 2.4.4+ bearer setting."""
    exc = fail_with(rsps, 401, CONSUMER_401, mode="bearer")
    assert isinstance(exc, MagentoAuthError)
    assert exc.hint is not None
    assert (
        "Allow OAuth Access Tokens to be used as standalone Bearer tokens" in exc.hint
    )
    assert 'auth = "oauth1"' in exc.hint
    assert exc.resources == ("Magento_Sales::actions_view",)
    assert "bearer-token-value" not in str(exc)


def test_oauth1_401_hint_lists_resources(rsps: responses.RequestsMock) -> None:
    """In oauth1 mode a 401 with parameters.resources is an ACL problem."""
    body = {
        "message": "The consumer isn't authorized to access %resources.",
        "parameters": {
            "resources": "Magento_Sales::creditmemo, Magento_Sales::comment"
        },
    }
    exc = fail_with(rsps, 401, body)
    assert isinstance(exc, MagentoAuthError)
    assert exc.resources == ("Magento_Sales::creditmemo", "Magento_Sales::comment")
    assert exc.hint is not None
    assert "Magento_Sales::creditmemo, Magento_Sales::comment" in exc.hint
    assert "enable_integration_as_bearer" not in exc.hint


def test_non_json_body_includes_a_short_snippet(rsps: responses.RequestsMock) -> None:
    """An HTML error page is summarized, whitespace collapsed and truncated."""
    page = "<html>\n  <head><title>Maintenance</title></head>" + "x" * 500 + "</html>"
    exc = fail_with(rsps, 400, page)
    assert isinstance(exc, FatalApiError)
    assert "non-JSON body" in exc.message
    assert "<html> <head><title>Maintenance</title>" in exc.message
    assert len(exc.message) < 200


def test_placeholders_fill_from_list_and_dict() -> None:
    """%1/%2 fill from a list, %name from a dict, unknown placeholders stay."""
    assert fill_placeholders("%1 of %2 (%3)", ["a", 2]) == "a of 2 (%3)"
    assert fill_placeholders('"%fieldName" is required.', {"fieldName": "sku"}) == (
        '"sku" is required.'
    )
    assert fill_placeholders("Need %resources", {"resources": ["A", "B"]}) == (
        "Need A, B"
    )
    assert fill_placeholders("No params %1", None) == "No params %1"
    assert fill_placeholders("%1 and %10", [str(i) for i in range(1, 11)]) == "1 and 10"


def test_error_envelope_fills_placeholders(rsps: responses.RequestsMock) -> None:
    """The raised message has placeholders filled and aggregate errors appended."""
    body = {
        "message": "Maximum SearchCriteria pageSize is %max",
        "parameters": {"max": 300},
        "errors": [{"message": "Field %1 is bad", "parameters": ["pageSize"]}],
        "code": 7,
    }
    exc = fail_with(rsps, 400, body)
    assert (
        exc.message == "Maximum SearchCriteria pageSize is 300; Field pageSize is bad"
    )
    assert exc.code == 7


REFUND_PREFIX = "Creditmemo Document Validation Error(s):\n"
BAD_STATE = (
    REFUND_PREFIX + "A creditmemo can not be created when an order has a status of %1"
)


@pytest.mark.parametrize(
    ("message", "parameters"),
    [
        (BAD_STATE, ["closed"]),
        (BAD_STATE, ["canceled"]),
        (REFUND_PREFIX + "The order does not allow a creditmemo to be created.", None),
        ("We can't create creditmemo for the order.", None),
        (REFUND_PREFIX + "The most money available to refund is %1.", ["0"]),
        (REFUND_PREFIX + "The most money available to refund is %1.", ["0.00"]),
        (REFUND_PREFIX + "The order does not allow a creditmemo to be created.\n"
         "The most money available to refund is 0.", None),
    ],
)  # fmt: skip
def test_refund_refusals_meaning_done_are_already_applied(
    rsps: responses.RequestsMock, message: str, parameters: Any
) -> None:
    """400s saying nothing is left to refund raise AlreadyAppliedError."""
    body: dict[str, Any] = {"message": message}
    if parameters is not None:
        body["parameters"] = parameters
    rsps.add(responses.POST, f"{API}/order/7/refund", json=body, status=400)
    with make_client() as client, pytest.raises(AlreadyAppliedError) as excinfo:
        refund(client)
    assert excinfo.value.status == 400
    assert "\n" not in excinfo.value.message
    assert len(rsps.calls) == 1


@pytest.mark.parametrize(
    "message",
    [
        "A creditmemo can not be created when an order has a status of holded",
        "A creditmemo can not be created when an order has a status of payment_review",
        "The most money available to refund is 12.5.",
        "The most money available to refund is 0.5.",
        "You can't create a creditmemo without products.",
        "We can't create creditmemo for the invoice.",
        "Maximum shipping amount allowed to refund is: 5.99",
    ],
)
def test_other_refund_refusals_are_fatal(message: str) -> None:
    """Refusals that need attention are not mistaken for already-applied."""
    assert not is_already_applied(message)


def test_write_5xx_is_outcome_unknown(rsps: responses.RequestsMock) -> None:
    """A 500 after a refund was sent is an unknown outcome, sent exactly once."""
    rsps.add(responses.POST, f"{API}/order/7/refund", json={"message": "x"}, status=500)
    with make_client(attempts=5) as client, pytest.raises(OutcomeUnknownError):
        refund(client)
    assert len(rsps.calls) == 1
