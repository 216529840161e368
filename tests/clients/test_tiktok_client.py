"""TikTokClient against ``responses``: signing on the wire, paging, retries, writes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import responses

from cancelsync.clients.http import RetryPolicy
from cancelsync.clients.tiktok.client import MAX_PAGES, TikTokClient
from cancelsync.clients.tiktok.signing import sign_request
from cancelsync.clients.tiktok.tokens import TikTokAuthClient, TokenManager
from cancelsync.clock import FakeClock, to_epoch
from cancelsync.config import StoreConfig, TikTokConfig
from cancelsync.errors import (
    AuthError,
    ConfigApiError,
    DataError,
    NotCancellableError,
    NotFoundError,
    OutcomeUnknownError,
    RetryableApiError,
)
from cancelsync.store.tokens import TokenPair

API = "https://open-api.test"
AUTH = "https://auth.test"
APP_KEY = "test_app_key"
APP_SECRET = "test_app_secret"
CIPHER = "ROW_TestCipher"
WEEK = 7 * 86400


@dataclass
class MemoryTokens:
    """A stand-in for the token table: what is stored, and every persist call."""

    pair: TokenPair | None
    saved: list[TokenPair] = field(default_factory=list)

    def load(self) -> TokenPair | None:
        return self.pair

    def persist(self, pair: TokenPair) -> None:
        self.saved.append(pair)
        self.pair = pair


@dataclass
class Harness:
    client: TikTokClient
    tokens: MemoryTokens
    clock: FakeClock
    sleeps: list[float]
    rsps: responses.RequestsMock


def ok(data: Any) -> dict[str, Any]:
    return {"code": 0, "message": "Success", "request_id": "RID", "data": data}


def fail(code: int, message: str = "error") -> dict[str, Any]:
    return {"code": code, "message": message, "request_id": "RIDERR", "data": {}}


def query_of(request: Any) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(request.url).query, keep_blank_values=True))


def assert_signed(request: Any, path: str) -> dict[str, str]:
    """The request's sign matches an independent computation over what was sent."""
    query = query_of(request)
    body = request.body if request.body else None
    if isinstance(body, str):
        body = body.encode()
    unsigned = {k: v for k, v in query.items() if k != "sign"}
    assert query["sign"] == sign_request(APP_SECRET, path, unsigned, body)
    return query


@pytest.fixture
def harness(clock: FakeClock) -> Iterator[Harness]:
    """A client with a valid token, a fake clock and instant retries."""
    now = to_epoch(clock.now())
    tokens = MemoryTokens(TokenPair("AT1", "RT1", now + WEEK, now + 100 * WEEK))
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock.advance(seconds)

    with requests.Session() as session, responses.RequestsMock() as rsps:
        auth = TikTokAuthClient(
            session,
            auth_base_url=AUTH,
            app_key=APP_KEY,
            app_secret=APP_SECRET,
            timeout=5,
            retry=RetryPolicy(sleep=sleep),
        )
        manager = TokenManager(
            auth, load=tokens.load, persist=tokens.persist, clock=clock
        )
        client = TikTokClient(
            session,
            base_url=API,
            app_key=APP_KEY,
            app_secret=APP_SECRET,
            tokens=manager,
            shop_cipher=CIPHER,
            clock=clock,
            timeout=5,
            retry=RetryPolicy(sleep=sleep),
        )
        yield Harness(client, tokens, clock, sleeps, rsps)


def _order(order_id: str, update_time: int = 1793538000) -> dict[str, Any]:
    return {"id": order_id, "status": "AWAITING_SHIPMENT", "update_time": update_time}


def test_shops_call_is_signed_without_shop_cipher(harness: Harness) -> None:
    """Authorization calls carry app_key, timestamp and sign, never shop_cipher."""
    shops = {"shops": [{"id": "1", "name": "S", "region": "US", "cipher": "C"}]}
    harness.rsps.get(f"{API}/authorization/202309/shops", json=ok(shops))
    result = harness.client.get_authorized_shops()
    assert [s.cipher for s in result] == ["C"]
    request = harness.rsps.calls[0].request
    query = assert_signed(request, "/authorization/202309/shops")
    assert "shop_cipher" not in query
    assert "access_token" not in query
    assert query["app_key"] == APP_KEY
    assert query["timestamp"] == str(to_epoch(harness.clock.now()))
    assert request.headers["x-tts-access-token"] == "AT1"
    assert request.headers["Content-Type"] == "application/json"


def test_search_orders_signs_the_exact_body_bytes(harness: Harness) -> None:
    """Filters go in a compact JSON body, paging in the query; both are signed."""
    harness.rsps.post(
        f"{API}/order/202309/orders/search",
        json=ok({"orders": [_order("1")], "next_page_token": ""}),
    )
    pages = list(
        harness.client.search_orders(
            update_time_ge=1699990000,
            update_time_lt=harness.clock.now(),
            order_status="CANCELLED",
        )
    )
    assert [[o.tiktok_order_id for o in page] for page in pages] == [["1"]]
    request = harness.rsps.calls[0].request
    query = assert_signed(request, "/order/202309/orders/search")
    assert query["shop_cipher"] == CIPHER
    assert query["page_size"] == "50"
    assert query["sort_field"] == "update_time"
    assert query["sort_order"] == "ASC"
    assert "page_token" not in query
    assert (
        request.body
        == json.dumps(
            {
                "order_status": "CANCELLED",
                "update_time_ge": 1699990000,
                "update_time_lt": to_epoch(harness.clock.now()),
            },
            separators=(",", ":"),
        ).encode()
    )


def test_page_token_is_percent_encoded_on_the_wire_and_signed_decoded(
    harness: Harness,
) -> None:
    """A token with + / = survives the URL and the sign covers its decoded value."""
    token = "++//ab+cd/ef=="
    url = f"{API}/order/202309/orders/search"
    harness.rsps.post(url, json=ok({"orders": [_order("1")], "next_page_token": token}))
    harness.rsps.post(url, json=ok({"orders": [_order("2")], "next_page_token": ""}))
    pages = list(harness.client.search_orders())
    assert [[o.tiktok_order_id for o in p] for p in pages] == [["1"], ["2"]]
    second = harness.rsps.calls[1].request
    assert "page_token=%2B%2B%2F%2Fab%2Bcd%2Fef%3D%3D" in second.url
    query = assert_signed(second, "/order/202309/orders/search")
    assert query["page_token"] == token


def test_repeated_page_token_raises_data_error(harness: Harness) -> None:
    """A next_page_token seen before stops the paging instead of looping."""
    url = f"{API}/return_refund/202309/cancellations/search"
    harness.rsps.post(url, json=ok({"cancellations": [], "next_page_token": "T1"}))
    harness.rsps.post(url, json=ok({"cancellations": [], "next_page_token": "T2"}))
    harness.rsps.post(url, json=ok({"cancellations": [], "next_page_token": "T1"}))
    with pytest.raises(DataError, match="page token"):
        list(harness.client.search_cancellations())
    assert len(harness.rsps.calls) == 3


def test_search_cancellations_puts_list_filters_in_the_body(harness: Harness) -> None:
    """cancel_status, cancel_types and order_ids are JSON lists in the body."""
    harness.rsps.post(
        f"{API}/return_refund/202309/cancellations/search",
        json=ok({"cancellations": []}),
    )
    list(
        harness.client.search_cancellations(
            update_time_ge=100,
            cancel_status="CANCELLATION_REQUEST_COMPLETE",
            cancel_types=["BUYER_CANCEL", "CANCEL"],
            order_ids=["9"],
            page_size=20,
        )
    )
    request = harness.rsps.calls[0].request
    assert json.loads(request.body) == {
        "update_time_ge": 100,
        "cancel_status": ["CANCELLATION_REQUEST_COMPLETE"],
        "cancel_types": ["BUYER_CANCEL", "CANCEL"],
        "order_ids": ["9"],
    }
    assert assert_signed(request, "/return_refund/202309/cancellations/search")[
        "page_size"
    ] == ("20")


def test_get_orders_comma_joins_ids_in_batches_of_50(harness: Harness) -> None:
    """120 ids go out as three calls of 50, 50 and 20, each one comma-joined param."""
    ids = [str(576461413038785000 + i) for i in range(120)]

    def reply(request: Any) -> tuple[int, dict[str, str], str]:
        sent = query_of(request)["ids"].split(",")
        return 200, {}, json.dumps(ok({"orders": [_order(i) for i in sent]}))

    harness.rsps.add_callback(
        responses.GET, f"{API}/order/202309/orders", callback=reply
    )
    orders = harness.client.get_orders(ids)
    assert [o.tiktok_order_id for o in orders] == ids
    batches = []
    for call in harness.rsps.calls:
        pairs = parse_qsl(urlsplit(call.request.url).query)
        assert [k for k, _ in pairs].count("ids") == 1
        batches.append(
            len(assert_signed(call.request, "/order/202309/orders")["ids"].split(","))
        )
    assert batches == [50, 50, 20]


def test_get_order_raises_not_found_when_missing(harness: Harness) -> None:
    """get_order raises NotFoundError when TikTok returns no such order."""
    harness.rsps.get(f"{API}/order/202309/orders", json=ok({"orders": []}))
    with pytest.raises(NotFoundError):
        harness.client.get_order("404")


def test_429_with_retry_after_is_retried_and_resigned(harness: Harness) -> None:
    """A 429 waits Retry-After seconds, then the call is re-signed with a new timestamp."""
    url = f"{API}/authorization/202309/shops"
    harness.rsps.get(url, status=429, json=fail(36009002), headers={"Retry-After": "2"})
    harness.rsps.get(url, json=ok({"shops": []}))
    assert harness.client.get_authorized_shops() == []
    assert harness.sleeps == [2.0]
    first, second = (query_of(c.request) for c in harness.rsps.calls)
    assert int(second["timestamp"]) == int(first["timestamp"]) + 2
    assert first["sign"] != second["sign"]
    assert_signed(harness.rsps.calls[1].request, "/authorization/202309/shops")


def test_server_errors_are_retried_then_raised(harness: Harness) -> None:
    """36009003 and 5xx are retried with backoff up to the policy's attempts."""
    url = f"{API}/authorization/202309/shops"
    harness.rsps.get(url, json=fail(36009003))
    harness.rsps.get(url, status=503, body="busy")
    with pytest.raises(RetryableApiError):
        harness.client.get_authorized_shops()
    assert len(harness.rsps.calls) == 5
    assert len(harness.sleeps) == 4
    assert all(s > 0 for s in harness.sleeps)


def test_expired_token_refreshes_once_and_retries_with_new_token(
    harness: Harness,
) -> None:
    """105002 refreshes the token, persists it first, and resends the call once."""
    url = f"{API}/authorization/202309/shops"
    seen_at_retry: list[list[TokenPair]] = []

    def second(request: Any) -> tuple[int, dict[str, str], str]:
        seen_at_retry.append(list(harness.tokens.saved))
        return 200, {}, json.dumps(ok({"shops": []}))

    harness.rsps.get(url, json=fail(105002, "Access token is expired"))
    harness.rsps.get(
        f"{AUTH}/api/v2/token/refresh",
        json=ok(
            {
                "access_token": "AT2",
                "access_token_expire_in": 1900000000,
                "refresh_token": "RT2",
                "refresh_token_expire_in": 4900000000,
            }
        ),
    )
    harness.rsps.add_callback(responses.GET, url, callback=second)
    harness.client.get_authorized_shops()
    api_calls = [c for c in harness.rsps.calls if c.request.url.startswith(API)]
    assert [c.request.headers["x-tts-access-token"] for c in api_calls] == [
        "AT1",
        "AT2",
    ]
    assert [p.access_token for p in seen_at_retry[0]] == ["AT2"]
    assert harness.tokens.pair == TokenPair("AT2", "RT2", 1900000000, 4900000000)


def test_expired_token_twice_gives_up_after_one_refresh(harness: Harness) -> None:
    """A second 105002 after a refresh is raised, not looped on."""
    harness.rsps.get(f"{API}/authorization/202309/shops", json=fail(105002))
    harness.rsps.get(
        f"{AUTH}/api/v2/token/refresh",
        json=ok(
            {
                "access_token": "AT2",
                "access_token_expire_in": 1900000000,
                "refresh_token": "RT2",
                "refresh_token_expire_in": 4900000000,
            }
        ),
    )
    with pytest.raises(AuthError) as info:
        harness.client.get_authorized_shops()
    assert info.value.refreshable
    refreshes = [c for c in harness.rsps.calls if "/token/refresh" in c.request.url]
    assert len(refreshes) == 1


def test_cancel_order_timeout_is_outcome_unknown_after_one_request(
    harness: Harness,
) -> None:
    """A timed-out seller cancel raises OutcomeUnknownError, not marked refused, once."""
    harness.rsps.post(
        f"{API}/return_refund/202309/cancellations",
        body=requests.exceptions.ReadTimeout("read timed out"),
    )
    with pytest.raises(OutcomeUnknownError) as info:
        harness.client.cancel_order("576", "seller_cancel_reason_out_of_stock")
    assert info.value.refused is False
    assert info.value.settle_seconds == 5  # the client's timeout
    assert len(harness.rsps.calls) == 1
    assert harness.sleeps == []


@pytest.mark.parametrize(
    ("status", "code", "refused"),
    [
        (500, 36009003, True),
        (503, None, True),
        (200, 36009003, True),
        (429, 36009002, True),
        (200, 36009002, True),
        (200, 25001028, True),
        (502, None, False),
        (504, None, False),
        (200, 36009007, False),
    ],
)
def test_cancel_order_transient_answers_are_outcome_unknown_sent_once(
    harness: Harness, status: int, code: int | None, refused: bool
) -> None:
    """Any transient answer to a write (even 429 or 25001028) is sent once and left to
    the engine; ``refused`` says whether the server answered "not done"."""
    url = f"{API}/return_refund/202309/cancellations"
    body = fail(code) if code is not None else {"message": "gateway"}
    harness.rsps.post(url, status=status, json=body, headers={"Retry-After": "4"})
    with pytest.raises(OutcomeUnknownError) as info:
        harness.client.cancel_order("576", "seller_cancel_reason_out_of_stock")
    assert info.value.refused is refused
    assert info.value.code == code
    assert info.value.retry_after == 4.0
    assert len(harness.rsps.calls) == 1
    assert harness.sleeps == []


def test_cancel_order_business_refusal_maps_to_not_cancellable(
    harness: Harness,
) -> None:
    """25001045 (shipped) raises NotCancellableError with TikTok's message."""
    harness.rsps.post(
        f"{API}/return_refund/202309/cancellations",
        json=fail(25001045, "The order has been shipped"),
    )
    with pytest.raises(NotCancellableError, match="has been shipped"):
        harness.client.cancel_order("576", "seller_cancel_reason_out_of_stock")


def test_cancel_order_rejects_two_line_selections(harness: Harness) -> None:
    """Lines go as order_line_item_ids or skus, never both."""
    with pytest.raises(ValueError, match="not both"):
        harness.client.cancel_order(
            "576", "r", order_line_item_ids=["L"], skus=[{"sku_id": "S", "quantity": 1}]
        )


def test_approve_sends_idempotency_key_in_signed_query(harness: Harness) -> None:
    """Approve posts to the cancel id's path with idempotency_key in the query."""
    path = "/return_refund/202309/cancellations/C9/approve"
    harness.rsps.post(f"{API}{path}", json=ok({}))
    harness.client.approve_cancellation("C9", idempotency_key="approve:us:C9")
    query = assert_signed(harness.rsps.calls[0].request, path)
    assert query["idempotency_key"] == "approve:us:C9"
    assert harness.rsps.calls[0].request.body is None


def test_eligible_reasons_and_fallbacks(harness: Harness) -> None:
    """Eligibility gives TikTok's names; an unavailable endpoint gives None."""
    path = "/return_refund/202602/orders/576/aftersale_eligibility"
    data = {
        "sku_eligibility": [
            {
                "sku_id": "S",
                "line_item_eligibility": [
                    {
                        "request_type": "CANCEL",
                        "eligible": True,
                        "available_reason_names": ["seller_cancel_reason_wrong_price"],
                    }
                ],
            }
        ]
    }
    harness.rsps.get(f"{API}{path}", json=ok(data))
    harness.rsps.get(f"{API}{path}", status=404, json=fail(36009014, "bad version"))
    assert harness.client.eligible_cancel_reasons("576") == [
        "seller_cancel_reason_wrong_price"
    ]
    query = assert_signed(harness.rsps.calls[0].request, path)
    assert query["initiate_aftersale_user"] == "SELLER"
    assert query["request_types"] == "CANCEL"
    assert harness.client.eligible_cancel_reasons("576") is None
    fallback = harness.client.valid_cancel_reasons(
        "UK", "UNPAID", tiktok_order_id="576"
    )
    assert "seller_cancel_unpaid_reason_out_of_stock_uk" in fallback
    assert harness.client.valid_cancel_reasons("US", "AWAITING_SHIPMENT") == [
        "seller_cancel_reason_out_of_stock",
        "seller_cancel_reason_wrong_price",
        "seller_cancel_paid_reason_address_not_deliver",
        "seller_cancel_paid_reason_buyer_requested_cancellation",
    ]


def test_shop_call_without_cipher_is_a_config_error_before_sending(
    harness: Harness,
) -> None:
    """An order call with no shop_cipher fails locally with a fix, sending nothing."""
    harness.client.shop_cipher = None
    with pytest.raises(ConfigApiError, match="shop_cipher"):
        harness.client.get_orders(["1"])
    assert len(harness.rsps.calls) == 0


def test_from_config_uses_the_tiktok_section_and_store(clock: FakeClock) -> None:
    """from_config points the client at api_base_url with the store's key and cipher."""
    store_cfg = StoreConfig(
        name="us", app_key=APP_KEY, app_secret=APP_SECRET, shop_cipher=CIPHER
    )
    tokens = MemoryTokens(TokenPair("AT", "RT", None, None))
    with requests.Session() as session, responses.RequestsMock() as rsps:
        auth = TikTokAuthClient(
            session,
            auth_base_url=AUTH,
            app_key=APP_KEY,
            app_secret=APP_SECRET,
            timeout=5,
        )
        manager = TokenManager(
            auth, load=tokens.load, persist=tokens.persist, clock=clock
        )
        client = TikTokClient.from_config(
            session,
            TikTokConfig(api_base_url=API, requests_per_second=100),
            store_cfg,
            tokens=manager,
            clock=clock,
        )
        rsps.get(f"{API}/order/202309/orders", json=ok({"orders": []}))
        assert client.get_orders(["1"]) == []
        assert query_of(rsps.calls[0].request)["shop_cipher"] == CIPHER


# ------------------------------------------------------------------ hostile replies

PORTAL = "<!DOCTYPE html><html><title>Sign in to the network</title></html>"


def test_fresh_page_tokens_forever_stop_after_max_pages(harness: Harness) -> None:
    """A search handing out a new token on every page raises DataError after MAX_PAGES
    requests instead of paging (and holding the worker's lock) forever."""
    url = f"{API}/return_refund/202309/cancellations/search"
    served = iter(range(10**6))

    def endless(request: Any) -> tuple[int, dict[str, str], str]:
        data = {"cancellations": [], "next_page_token": f"T{next(served)}"}
        return 200, {}, json.dumps(ok(data))

    harness.rsps.add_callback(responses.POST, url, callback=endless)
    with pytest.raises(DataError, match="after 200 pages"):
        list(harness.client.search_cancellations())
    assert len(harness.rsps.calls) == MAX_PAGES


def test_search_orders_keeps_unreadable_orders_on_the_page(harness: Harness) -> None:
    """One order without a status does not sink the search page: it is kept in
    ``Page.unreadable`` with its id and update_time."""
    bad = {"id": "2", "update_time": 1793538123}
    harness.rsps.post(
        f"{API}/order/202309/orders/search",
        json=ok({"orders": [_order("1"), bad], "next_page_token": ""}),
    )
    [page] = list(harness.client.search_orders())
    assert [o.tiktok_order_id for o in page] == ["1"]
    [unreadable] = page.unreadable
    assert (unreadable.item_id, unreadable.position) == ("2", 1793538123)
    assert "status is missing" in unreadable.error


def test_html_page_on_200_is_retried_on_a_read(harness: Harness) -> None:
    """A captive portal's 200 HTML page is retried like a 5xx, then the read succeeds."""
    url = f"{API}/order/202309/orders"
    harness.rsps.get(url, body=PORTAL, content_type="text/html")
    harness.rsps.get(url, json=ok({"orders": [_order("1")]}))
    assert [o.tiktok_order_id for o in harness.client.get_orders(["1"])] == ["1"]
    assert len(harness.rsps.calls) == 2
    assert len(harness.sleeps) == 1


def test_html_page_on_200_to_a_write_is_an_unknown_outcome(harness: Harness) -> None:
    """A seller cancel answered by an HTML page may have reached TikTok: an unknown
    outcome (not refused), sent once, for the engine to re-read."""
    harness.rsps.post(
        f"{API}/return_refund/202309/cancellations",
        body=PORTAL,
        content_type="text/html",
    )
    with pytest.raises(OutcomeUnknownError) as info:
        harness.client.cancel_order("576", "seller_cancel_reason_out_of_stock")
    assert info.value.refused is False
    assert "Sign in to the network" in info.value.message
    assert len(harness.rsps.calls) == 1
