"""Tests for MagentoClient operations against `responses` and a small stateful fake."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import pytest
import requests
import responses
from oauthlib.oauth1.rfc5849 import signature
from structlog.testing import capture_logs

from cancelsync.clients.http import RetryPolicy
from cancelsync.clients.magento import BearerAuth, MagentoClient, oauth1_auth
from cancelsync.clients.magento.paging import MAX_PAGES
from cancelsync.config import MagentoConfig
from cancelsync.errors import (
    DataError,
    FatalApiError,
    OutcomeUnknownError,
    RetryableApiError,
)

BASE = "https://magento.test"
API = f"{BASE}/rest/default/V1"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "magento"
_KEY = re.compile(
    r"searchCriteria\[filter_groups\]\[(\d)\]\[filters\]\[(\d)\]"
    r"\[(field|value|condition_type)\]"
)


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


class FakeSearch:
    """A stateful stand-in for a Magento search endpoint over in-memory rows.

    Applies filter groups (OR inside, AND across), sorts by entity_id, pages with
    Magento's clamp (a currentPage past the end returns the last page), and can cap the
    page size or ignore the filters like a misbehaving store.
    """

    def __init__(
        self,
        rows: list[dict[str, Any]],
        *,
        max_page: int | None = None,
        ignore_filters: bool = False,
    ) -> None:
        self.rows = rows
        self.max_page = max_page
        self.ignore_filters = ignore_filters
        self.queries: list[dict[str, str]] = []

    def __call__(
        self, request: requests.PreparedRequest
    ) -> tuple[int, dict[str, str], str]:
        query = dict(parse_qsl(urlsplit(request.url or "").query))
        self.queries.append(query)
        groups: dict[str, dict[str, dict[str, str]]] = {}
        for key, value in query.items():
            m = _KEY.fullmatch(key)
            if m:
                groups.setdefault(m[1], {}).setdefault(m[2], {})[m[3]] = value
        rows = self.rows
        if not self.ignore_filters:
            for group in groups.values():
                rows = [r for r in rows if any(_match(r, f) for f in group.values())]
        rows = sorted(rows, key=lambda r: int(r["entity_id"]))
        size = int(query["searchCriteria[pageSize]"])
        if self.max_page:
            size = min(size, self.max_page)
        pages = max(1, -(-len(rows) // size))
        page = min(int(query.get("searchCriteria[currentPage]", "1")), pages)
        items = rows[(page - 1) * size : page * size]
        return 200, {}, json.dumps({"items": items, "total_count": len(rows)})


def _match(row: dict[str, Any], flt: dict[str, str]) -> bool:
    value = row.get(flt["field"])
    cond = flt.get("condition_type", "eq")
    want = flt["value"]
    if cond == "in":
        return str(value) in want.split(",")
    if cond == "notnull":
        return value not in (None, "")
    left: Any = value
    right: Any = want
    if isinstance(value, int):
        right = int(want)
    return bool(
        {
            "eq": left == right,
            "gt": left > right,
            "gteq": left >= right,
            "lt": left < right,
        }[cond]
    )


def memo(
    entity_id: int,
    *,
    order_id: int = 1,
    created_at: str = "2026-11-01 10:00:00",
    store_id: int = 1,
    comments: bool = True,
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "entity_id": entity_id,
        "order_id": order_id,
        "increment_id": f"{entity_id:09d}",
        "created_at": created_at,
        "store_id": store_id,
        "grand_total": 10,
        "items": [{"order_item_id": 5, "sku": "S", "qty": 1}],
    }
    if comments:
        row["comments"] = []
    return row


def order(entity_id: int, tiktok_id: str | None) -> dict[str, Any]:
    raw = load("order_configurable.json")
    raw["entity_id"] = entity_id
    raw["increment_id"] = f"{entity_id:09d}"
    raw["ext_order_id"] = tiktok_id
    return raw


def make_client(
    *, bearer: bool = False, attempts: int = 3, sleeps: list[float] | None = None
) -> MagentoClient:
    auth = (
        BearerAuth("bearer-token-value")
        if bearer
        else oauth1_auth(
            "consumer-key", "consumer-secret", "access-token", "access-secret"
        )
    )
    recorded = sleeps if sleeps is not None else []
    return MagentoClient(
        requests.Session(),
        base_url=BASE,
        store_code="default",
        timeout=4.5,
        auth=auth,
        retry=RetryPolicy(attempts=attempts, sleep=recorded.append),
    )


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def client() -> Iterator[MagentoClient]:
    with make_client() as c:
        yield c


def header(request: Any, name: str) -> str:
    """A request header as text (requests-oauthlib leaves some as bytes)."""
    value = request.headers[name]
    return value.decode() if isinstance(value, bytes) else str(value)


def body_of(call: Any) -> Any:
    raw = call.request.body
    return json.loads(raw.decode() if isinstance(raw, bytes) else raw)


# ----------------------------------------------------------------- credit memos


def test_iter_credit_memos_uses_keyset_pages(
    rsps: responses.RequestsMock, client: MagentoClient
) -> None:
    """250 memos arrive in 3 ascending pages, each query a gt cursor on page 1."""
    fake = FakeSearch([memo(i) for i in range(1, 251)])
    rsps.add_callback(responses.GET, f"{API}/creditmemos", callback=fake)
    pages = list(client.iter_credit_memos(0, page_size=100))
    ids = [m.magento_creditmemo_id for page in pages for m in page]
    assert ids == list(range(1, 251))
    assert [len(p) for p in pages] == [100, 100, 50]
    assert [
        q["searchCriteria[filter_groups][0][filters][0][value]"] for q in fake.queries
    ] == ["0", "100", "200"]
    assert {q["searchCriteria[currentPage]"] for q in fake.queries} == {"1"}
    assert {q["searchCriteria[sortOrders][0][direction]"] for q in fake.queries} == {
        "ASC"
    }


def test_iter_credit_memos_stops_on_exact_full_page(
    rsps: responses.RequestsMock, client: MagentoClient
) -> None:
    """A full page holding total_count rows ends paging without another request."""
    fake = FakeSearch([memo(i) for i in range(11, 111)])
    rsps.add_callback(responses.GET, f"{API}/creditmemos", callback=fake)
    pages = list(client.iter_credit_memos(10, page_size=100))
    assert [len(p) for p in pages] == [100]
    assert len(fake.queries) == 1


def test_iter_credit_memos_after_cursor_and_store_filter(
    rsps: responses.RequestsMock, client: MagentoClient
) -> None:
    """Only memos after the cursor and in the given stores come back."""
    rows = [memo(i, store_id=1 + i % 3) for i in range(1, 31)]
    fake = FakeSearch(rows)
    rsps.add_callback(responses.GET, f"{API}/creditmemos", callback=fake)
    pages = list(client.iter_credit_memos(20, store_ids=(1, 2)))
    got = [(m.magento_creditmemo_id, m.store_id) for p in pages for m in p]
    assert got == [(i, 1 + i % 3) for i in range(21, 31) if 1 + i % 3 in (1, 2)]
    assert "1,2" in fake.queries[0].values()


def test_iter_credit_memos_empty_yields_nothing(
    rsps: responses.RequestsMock, client: MagentoClient
) -> None:
    """No memos after the cursor yields no pages."""
    rsps.add_callback(responses.GET, f"{API}/creditmemos", callback=FakeSearch([]))
    assert list(client.iter_credit_memos(99)) == []


def test_store_capping_page_size_still_reads_everything(
    rsps: responses.RequestsMock, client: MagentoClient
) -> None:
    """A store returning 20 rows per page (total_count 45) is read to the end."""
    fake = FakeSearch([memo(i) for i in range(1, 46)], max_page=20)
    rsps.add_callback(responses.GET, f"{API}/creditmemos", callback=fake)
    ids = [m.magento_creditmemo_id for p in client.iter_credit_memos(0) for m in p]
    assert ids == list(range(1, 46))
    assert len(fake.queries) == 3


def test_page_that_does_not_advance_raises(
    rsps: responses.RequestsMock, client: MagentoClient
) -> None:
    """A store ignoring the cursor filter raises DataError instead of looping."""
    fake = FakeSearch([memo(i) for i in range(1, 6)], max_page=2, ignore_filters=True)
    rsps.add_callback(responses.GET, f"{API}/creditmemos", callback=fake)
    with pytest.raises(DataError, match="ignored the entity_id filter"):
        for _ in client.iter_credit_memos(0, page_size=2):
            pass
    assert len(fake.queries) == 2


def test_credit_memos_created_since_filters_on_utc_created_at(
    rsps: responses.RequestsMock, client: MagentoClient
) -> None:
    """created_at gteq uses Magento's UTC format and includes the boundary second."""
    rows = [
        memo(1, created_at="2026-11-01 09:59:59"),
        memo(2, created_at="2026-11-01 10:00:00"),
        memo(3, created_at="2026-11-01 10:30:00"),
    ]
    fake = FakeSearch(rows)
    rsps.add_callback(responses.GET, f"{API}/creditmemos", callback=fake)
    since = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
    memos = client.credit_memos_created_since(since)
    assert [m.magento_creditmemo_id for m in memos] == [2, 3]
    assert "2026-11-01 10:00:00" in fake.queries[0].values()
    assert "gteq" in fake.queries[0].values()


def test_credit_memos_for_order_fetches_missing_comments(
    rsps: responses.RequestsMock, client: MagentoClient
) -> None:
    """Memos whose search row lacks comments get them from creditmemo/{id}/comments."""
    rows = [
        memo(5, order_id=9),
        memo(6, order_id=9, comments=False),
        memo(7, order_id=8),
    ]
    rsps.add_callback(responses.GET, f"{API}/creditmemos", callback=FakeSearch(rows))
    rsps.add(
        responses.GET,
        f"{API}/creditmemo/6/comments",
        json={
            "items": [{"comment": "cancelsync: marker", "parent_id": 6}],
            "total_count": 1,
        },
    )
    memos = client.credit_memos_for_order(9)
    assert [(m.magento_creditmemo_id, m.comments) for m in memos] == [
        (5, ()),
        (6, ("cancelsync: marker",)),
    ]
    assert sum("comments" in (c.request.url or "") for c in rsps.calls) == 1


def test_get_credit_memo_maps_the_recording(
    rsps: responses.RequestsMock, client: MagentoClient
) -> None:
    """GET creditmemo/{id} returns the mapped memo."""
    rsps.add(
        responses.GET, f"{API}/creditmemo/311", json=load("creditmemo_partial.json")
    )
    assert client.get_credit_memo(311).magento_entity_id == 1042


# ----------------------------------------------------------------- orders


def test_get_order_reads_configured_field(rsps: responses.RequestsMock) -> None:
    """The client maps the TikTok id from its configured field."""
    raw = load("order_configurable.json")
    raw["tiktok_id"] = "T-1"
    rsps.add(responses.GET, f"{API}/orders/1042", json=raw)
    with MagentoClient(
        requests.Session(),
        base_url=BASE,
        store_code="default",
        timeout=3,
        auth=BearerAuth("t0ken"),
        tiktok_order_id_field="tiktok_id",
    ) as client:
        assert client.get_order(1042).tiktok_order_id == "T-1"


def test_orders_by_tiktok_ids_batches_and_keeps_every_id(
    rsps: responses.RequestsMock, client: MagentoClient
) -> None:
    """120 ids go out in batches of 50; every id is a key, duplicates stay visible."""
    rows = [order(1000 + i, f"T{i}") for i in range(0, 120, 2)]
    rows.append(order(5000, "T4"))  # a duplicate import
    fake = FakeSearch(rows)
    rsps.add_callback(responses.GET, f"{API}/orders", callback=fake)
    ids = [f"T{i}" for i in range(120)]
    result = client.orders_by_tiktok_ids(ids)
    assert list(result) == ids
    assert [o.magento_entity_id for o in result["T4"]] == [1004, 5000]
    assert result["T3"] == []
    assert len(result["T118"]) == 1
    in_values = [
        q["searchCriteria[filter_groups][0][filters][0][value]"] for q in fake.queries
    ]
    assert [len(v.split(",")) for v in in_values] == [50, 50, 20]
    assert {
        q["searchCriteria[filter_groups][0][filters][0][field]"] for q in fake.queries
    } == {"ext_order_id"}


def test_orders_by_entity_ids(
    rsps: responses.RequestsMock, client: MagentoClient
) -> None:
    """Known ids map to orders; unknown ids are left out."""
    rsps.add_callback(
        responses.GET,
        f"{API}/orders",
        callback=FakeSearch([order(1, "A"), order(2, "B")]),
    )
    result = client.orders_by_entity_ids([2, 1, 3, 2])
    assert sorted(result) == [1, 2]
    assert result[2].tiktok_order_id == "B"


# ----------------------------------------------------------------- writes


def test_refund_body_matches_magento_contract(
    rsps: responses.RequestsMock, client: MagentoClient
) -> None:
    """The refund POST carries items, explicit shipping, restock ids and the comment."""
    rsps.add(responses.POST, f"{API}/order/1042/refund", body="318", status=200)
    memo_id = client.refund_order(
        1042,
        items=[(2101, Decimal("1")), (2103, Decimal("0.5"))],
        shipping_amount=Decimal("0"),
        return_to_stock_items=[2101, 2102],
        comment="cancelsync: TikTok order 5764 cancelled",
    )
    assert memo_id == 318
    (call,) = rsps.calls
    assert header(call.request, "Content-Type") == "application/json"
    assert body_of(call) == {
        "items": [
            {"order_item_id": 2101, "qty": 1},
            {"order_item_id": 2103, "qty": 0.5},
        ],
        "notify": False,
        "appendComment": True,
        "comment": {
            "comment": "cancelsync: TikTok order 5764 cancelled",
            "is_visible_on_front": 0,
        },
        "arguments": {
            "shipping_amount": 0,
            "adjustment_positive": 0,
            "adjustment_negative": 0,
            "extension_attributes": {"return_to_stock_items": [2101, 2102]},
        },
    }


def test_refund_without_shipping_amount_leaves_the_key_out(
    rsps: responses.RequestsMock, client: MagentoClient
) -> None:
    """shipping_amount None omits arguments.shipping_amount: Magento refunds what is left."""
    rsps.add(responses.POST, f"{API}/order/1042/refund", body="319", status=200)
    client.refund_order(
        1042,
        items=[(2101, Decimal("1"))],
        shipping_amount=None,
        return_to_stock_items=[],
        comment="",
    )
    (call,) = rsps.calls
    assert body_of(call)["arguments"] == {
        "adjustment_positive": 0,
        "adjustment_negative": 0,
    }


def test_refund_refuses_empty_items_without_sending(
    rsps: responses.RequestsMock, client: MagentoClient
) -> None:
    """Empty items would refund everything, so nothing is sent."""
    with pytest.raises(ValueError, match="needs items"):
        client.refund_order(
            1,
            items=[],
            shipping_amount=Decimal("0"),
            return_to_stock_items=(),
            comment="c",
        )
    with pytest.raises(ValueError, match="positive"):
        client.refund_order(
            1,
            items=[(1, Decimal("0"))],
            shipping_amount=Decimal("0"),
            return_to_stock_items=(),
            comment="c",
        )
    assert len(rsps.calls) == 0


@pytest.mark.parametrize(
    "failure",
    [
        requests.exceptions.ReadTimeout("read timed out"),
        requests.exceptions.ChunkedEncodingError("Connection broken: IncompleteRead"),
        requests.exceptions.ConnectionError(
            "('Connection aborted.', RemoteDisconnected('Remote end closed'))"
        ),
    ],
)
def test_refund_timeout_or_drop_is_outcome_unknown_and_sent_once(
    rsps: responses.RequestsMock, failure: Exception
) -> None:
    """A refund that times out, drops or has its reply cut off is never re-sent."""
    rsps.add(responses.POST, f"{API}/order/7/refund", body=failure)
    sleeps: list[float] = []
    client = make_client(attempts=5, sleeps=sleeps)
    with client, pytest.raises(OutcomeUnknownError) as excinfo:
        client.refund_order(
            7,
            items=[(1, Decimal("1"))],
            shipping_amount=Decimal("0"),
            return_to_stock_items=(),
            comment="c",
        )
    assert len(rsps.calls) == 1
    assert sleeps == []
    assert excinfo.value.hint is not None


def test_refund_429_is_left_to_the_engine_marked_refused(
    rsps: responses.RequestsMock,
) -> None:
    """A throttled refund is not re-sent by the transport: OutcomeUnknownError marked
    refused with its Retry-After, so the engine re-reads, then re-sends via its ledger."""
    rsps.add(
        responses.POST,
        f"{API}/order/7/refund",
        json={"message": "Too Many Requests"},
        status=429,
        headers={"Retry-After": "3"},
    )
    sleeps: list[float] = []
    with (
        make_client(sleeps=sleeps) as client,
        pytest.raises(OutcomeUnknownError) as info,
    ):
        client.refund_order(
            7,
            items=[(1, Decimal("1"))],
            shipping_amount=Decimal("2.50"),
            return_to_stock_items=(),
            comment="c",
        )
    assert (info.value.refused, info.value.retry_after) == (True, 3.0)
    assert len(rsps.calls) == 1
    assert sleeps == []


def test_refund_reply_without_memo_id_is_outcome_unknown(
    rsps: responses.RequestsMock, client: MagentoClient
) -> None:
    """A 200 whose reply is not a memo id leaves the outcome to reconcile."""
    rsps.add(responses.POST, f"{API}/order/7/refund", json={"unexpected": True})
    with pytest.raises(OutcomeUnknownError, match="instead of a credit memo id"):
        client.refund_order(
            7,
            items=[(1, Decimal("1"))],
            shipping_amount=Decimal("0"),
            return_to_stock_items=(),
            comment="c",
        )


@pytest.mark.parametrize(("reply", "expected"), [(True, True), (False, False)])
def test_cancel_order_returns_the_boolean(
    rsps: responses.RequestsMock, client: MagentoClient, reply: bool, expected: bool
) -> None:
    """cancel_order reports Magento's true/false (false is still HTTP 200)."""
    rsps.add(responses.POST, f"{API}/orders/7/cancel", json=reply)
    assert client.cancel_order(7) is expected


def test_cancel_order_non_boolean_reply_is_data_error(
    rsps: responses.RequestsMock, client: MagentoClient
) -> None:
    """Anything but a boolean from cancel is a DataError."""
    rsps.add(responses.POST, f"{API}/orders/7/cancel", json={"x": 1})
    with pytest.raises(DataError):
        client.cancel_order(7)


def test_add_order_comment_sends_no_status(
    rsps: responses.RequestsMock, client: MagentoClient
) -> None:
    """The comment body leaves out status and never notifies the buyer."""
    rsps.add(responses.POST, f"{API}/orders/7/comments", json=True)
    client.add_order_comment(7, "cancelsync: note")
    history = body_of(rsps.calls[0])["statusHistory"]
    assert "status" not in history
    assert history["comment"] == "cancelsync: note"
    assert history["is_customer_notified"] == 0
    assert history["is_visible_on_front"] == 0


def test_write_400_is_fatal_and_not_retried(
    rsps: responses.RequestsMock, client: MagentoClient
) -> None:
    """A refused comment is a FatalApiError sent once."""
    rsps.add(
        responses.POST,
        f"{API}/orders/7/comments",
        status=400,
        json={
            "message": 'Unable to add comment: The status "%1" is not part of the '
            "order status history.",
            "parameters": ["x"],
        },
    )
    with pytest.raises(FatalApiError, match='The status "x"'):
        client.add_order_comment(7, "c")
    assert len(rsps.calls) == 1


# ----------------------------------------------------------------- modules


def test_list_modules_and_msi_detection(
    rsps: responses.RequestsMock, client: MagentoClient
) -> None:
    """Module names are listed and MSI is detected from them."""
    mods = ["Magento_Sales", "Magento_Inventory", "Magento_InventorySales"]
    rsps.add(responses.GET, f"{API}/modules", json=mods)
    assert client.list_modules() == mods
    assert MagentoClient.has_msi(mods)
    assert not MagentoClient.has_msi(["Magento_Sales", "Magento_CatalogInventory"])


# ----------------------------------------------------------------- transport


def test_reads_retry_5xx_with_injected_sleep(rsps: responses.RequestsMock) -> None:
    """A 503 then a 200 succeeds after one instant, recorded sleep."""
    rsps.add(
        responses.GET,
        f"{API}/modules",
        status=503,
        json={"message": "busy"},
        headers={"Retry-After": "2"},
    )
    rsps.add(
        responses.GET, f"{API}/modules", status=502, body="<html>bad gateway</html>"
    )
    rsps.add(responses.GET, f"{API}/modules", json=["Magento_Sales"])
    sleeps: list[float] = []
    with make_client(sleeps=sleeps) as client:
        assert client.list_modules() == ["Magento_Sales"]
    assert len(rsps.calls) == 3
    assert sleeps[0] == 2.0
    assert len(sleeps) == 2


def test_reads_give_up_after_the_attempt_cap(rsps: responses.RequestsMock) -> None:
    """A persistent 429 raises RetryableApiError after the configured attempts."""
    rsps.add(responses.GET, f"{API}/modules", status=429, json={"message": "slow"})
    sleeps: list[float] = []
    client = make_client(attempts=3, sleeps=sleeps)
    with client, pytest.raises(RetryableApiError):
        client.list_modules()
    assert len(rsps.calls) == 3
    assert len(sleeps) == 2


def test_every_call_has_timeout_and_verify(
    rsps: responses.RequestsMock, client: MagentoClient
) -> None:
    """Requests carry the configured timeout and TLS verification."""
    rsps.add(responses.GET, f"{API}/modules", json=[])
    client.list_modules()
    kwargs = rsps.calls[0].request.req_kwargs  # type: ignore[attr-defined]
    assert kwargs["timeout"] == 4.5
    assert kwargs["verify"] not in (False, None)  # True or the CA bundle path


def test_each_call_logged_once_without_secrets(rsps: responses.RequestsMock) -> None:
    """One http.request event per call; no token or query value in the logs."""
    rsps.add(responses.GET, f"{API}/creditmemos", json={"items": [], "total_count": 0})
    with make_client(bearer=True) as client, capture_logs() as logs:
        list(client.iter_credit_memos(123456789))
    events = [e for e in logs if e["event"] == "http.request"]
    assert len(events) == 1
    assert events[0]["path"] == "/rest/default/V1/creditmemos"
    assert events[0]["status"] == 200
    text = repr(logs)
    assert "bearer-token-value" not in text
    assert "123456789" not in text


def test_oauth1_signs_json_post_without_body(
    rsps: responses.RequestsMock, client: MagentoClient
) -> None:
    """A JSON POST is signed HMAC-SHA256 over URL + oauth params only (no body hash)."""
    rsps.add(responses.POST, f"{API}/orders/7/comments", json=True)
    client.add_order_comment(7, "note")
    request = rsps.calls[0].request
    auth = header(request, "Authorization")
    assert 'oauth_signature_method="HMAC-SHA256"' in auth
    assert "oauth_body_hash" not in auth
    assert _signature_ok(request)


def test_oauth1_signs_encoded_search_query(
    rsps: responses.RequestsMock, client: MagentoClient
) -> None:
    """A searchCriteria GET is signed over the percent-encoded query."""
    rsps.add(responses.GET, f"{API}/creditmemos", json={"items": [], "total_count": 0})
    list(client.iter_credit_memos(0, store_ids=(1,)))
    request = rsps.calls[0].request
    assert "%5B" in (request.url or "")
    assert "[" not in (request.url or "")
    assert _signature_ok(request)


def test_oauth1_date_filter_sends_a_space_as_percent_20(
    rsps: responses.RequestsMock, client: MagentoClient
) -> None:
    """A created_at filter goes out as %20, never '+', and verifies as Magento reads it."""
    rsps.add(responses.GET, f"{API}/creditmemos", json={"items": [], "total_count": 0})
    client.credit_memos_created_since(datetime(2026, 11, 30, 1, 2, 3, tzinfo=UTC))
    request = rsps.calls[0].request
    query = urlsplit(request.url or "").query
    assert "2026-11-30%2001%3A02%3A03" in query
    assert "+" not in query
    assert _signature_ok(request)


def _magento_query_params(query: str) -> list[tuple[str, str]]:
    """Oauth\\Helper\\Request::_extractQueryStringParams: rawurldecode, '+' kept."""
    pairs = [part.split("=") for part in query.split("&") if query]
    return [(unquote(p[0]), unquote(p[1])) for p in pairs if len(p) == 2]


def _signature_ok(request: requests.PreparedRequest) -> bool:
    """Recompute the signature as Magento does: the raw query, the body never."""
    url = request.url or ""
    auth = header(request, "Authorization")
    params = signature.collect_parameters(
        headers={"Authorization": auth}, exclude_oauth_signature=True
    )
    params += _magento_query_params(urlsplit(url).query)
    base = signature.signature_base_string(
        request.method or "",
        signature.base_string_uri(url),
        signature.normalize_parameters(params),
    )
    digest = hmac.new(b"consumer-secret&access-secret", base.encode(), hashlib.sha256)
    expected = base64.b64encode(digest.digest()).decode()
    sent = dict(
        signature.collect_parameters(
            headers={"Authorization": auth}, exclude_oauth_signature=False
        )
    )["oauth_signature"]
    return bool(sent == expected)


def test_bearer_sends_authorization_header(rsps: responses.RequestsMock) -> None:
    """Bearer mode sends the token and hides it from repr."""
    rsps.add(responses.GET, f"{API}/modules", json=[])
    auth = BearerAuth("bearer-token-value")
    with MagentoClient(
        requests.Session(), base_url=BASE, store_code="default", timeout=3, auth=auth
    ) as client:
        client.list_modules()
        assert client.auth_mode == "bearer"
    assert header(rsps.calls[0].request, "Authorization") == "Bearer bearer-token-value"
    assert "bearer-token-value" not in repr(auth)


@pytest.mark.parametrize("mode", ["oauth1", "bearer"])
def test_from_config_builds_the_client(rsps: responses.RequestsMock, mode: str) -> None:
    """from_config wires auth, store code, timeout and TLS from [magento]."""
    cfg = MagentoConfig(
        base_url="https://shop.test",
        store_code="en_us",
        auth=mode,
        consumer_key="ck",
        consumer_secret="cs",
        access_token="at",
        access_token_secret="ats",
        token="tok-0001",
        timeout_seconds=12.0,
        verify_tls=False,
        tiktok_order_id_field="tt_id",
        requests_per_second=50.0,
    )
    rsps.add(responses.GET, "https://shop.test/rest/en_us/V1/modules", json=[])
    with MagentoClient.from_config(cfg) as client:
        client.list_modules()
        assert client.auth_mode == mode
        assert client.tiktok_order_id_field == "tt_id"
    kwargs = rsps.calls[0].request.req_kwargs  # type: ignore[attr-defined]
    assert (kwargs["timeout"], kwargs["verify"]) == (12.0, False)
    auth_header = header(rsps.calls[0].request, "Authorization")
    assert auth_header.startswith("OAuth " if mode == "oauth1" else "Bearer ")


def test_invalid_store_code_is_refused() -> None:
    """A store code with a slash would change the route, so it is refused."""
    with pytest.raises(ValueError, match="store_code"):
        MagentoClient(
            requests.Session(),
            base_url=BASE,
            store_code="a/b",
            timeout=1,
            auth=BearerAuth("t0ken"),
        )


# ----------------------------------------------------------------- hostile replies

PORTAL = "<!DOCTYPE html><html><title>Sign in to the network</title></html>"


def test_html_page_on_200_is_retried_on_a_read(rsps: responses.RequestsMock) -> None:
    """A captive portal's 200 HTML page is transient: retried, then the read succeeds
    (never a DataError that would make the order an attention item)."""
    rsps.add(responses.GET, f"{API}/orders/5", body=PORTAL, content_type="text/html")
    rsps.add(responses.GET, f"{API}/orders/5", json=order(5, "576"))
    sleeps: list[float] = []
    with make_client(sleeps=sleeps) as client:
        assert client.get_order(5).magento_entity_id == 5
    assert len(rsps.calls) == 2
    assert len(sleeps) == 1


def test_html_page_on_200_persisting_is_retryable(rsps: responses.RequestsMock) -> None:
    """A portal that stays raises RetryableApiError quoting the page after the attempts."""
    rsps.add(responses.GET, f"{API}/orders/5", body=PORTAL, content_type="text/html")
    with make_client(attempts=2) as client, pytest.raises(RetryableApiError) as info:
        client.get_order(5)
    assert "Sign in to the network" in info.value.message
    assert info.value.status == 200
    assert len(rsps.calls) == 2


@pytest.mark.parametrize("status", [200, 502])
def test_refund_answered_by_an_html_page_is_an_unknown_outcome_sent_once(
    rsps: responses.RequestsMock, status: int
) -> None:
    """A refund answered by a proxy's or portal's HTML page may have been applied: an
    unknown outcome (not refused), never re-sent by the transport."""
    rsps.add(
        responses.POST, f"{API}/order/7/refund", body=PORTAL, status=status,
        content_type="text/html",
    )  # fmt: skip
    sleeps: list[float] = []
    with (
        make_client(attempts=5, sleeps=sleeps) as client,
        pytest.raises(OutcomeUnknownError) as info,
    ):
        client.refund_order(
            7,
            items=[(1, Decimal("1"))],
            shipping_amount=Decimal("0"),
            return_to_stock_items=(),
            comment="c",
        )
    assert info.value.refused is False
    assert len(rsps.calls) == 1
    assert sleeps == []


def test_memo_row_without_an_id_is_kept_with_the_id_before_it(
    rsps: responses.RequestsMock, client: MagentoClient
) -> None:
    """A memo whose entity_id cannot be read is reported with the id just before it,
    where a cursor must hold to read it again; the rows after it still come."""
    rows = [memo(1), memo(2), memo(3)]
    del rows[1]["entity_id"]
    rows[1]["order_id"] = 1
    rsps.add_callback(
        responses.GET, f"{API}/creditmemos",
        callback=lambda request: (200, {}, json.dumps({"items": rows, "total_count": 3})),
    )  # fmt: skip
    [page] = list(client.iter_credit_memos(0))
    assert [m.magento_creditmemo_id for m in page] == [1, 3]
    [bad] = page.unreadable
    assert (bad.item_id, bad.position) == (None, 1)


def test_full_page_without_a_readable_id_raises_instead_of_looping(
    rsps: responses.RequestsMock, client: MagentoClient
) -> None:
    """A full page whose rows have no readable id cannot move the keyset: DataError after
    the page was handed over (so its rows are reported), not the same page forever."""
    rows = [memo(i) for i in range(1, 3)]
    for row in rows:
        row["entity_id"] = "?"
    reply = json.dumps({"items": rows, "total_count": 5})
    rsps.add_callback(
        responses.GET, f"{API}/creditmemos", callback=lambda request: (200, {}, reply)
    )
    pages = client.iter_credit_memos(0, page_size=2)
    assert len(next(pages).unreadable) == 2
    with pytest.raises(DataError, match="no readable id"):
        next(pages)
    assert len(rsps.calls) == 1


def test_keyset_paging_stops_after_max_pages(
    rsps: responses.RequestsMock, client: MagentoClient
) -> None:
    """A search that still has rows after MAX_PAGES pages raises DataError: nothing of
    ours pages that far (a cursor scan stops itself first)."""
    fake = FakeSearch([memo(i) for i in range(1, MAX_PAGES + 3)])
    rsps.add_callback(responses.GET, f"{API}/creditmemos", callback=fake)
    with pytest.raises(DataError, match=f"after {MAX_PAGES} pages"):
        for _ in client.iter_credit_memos(0, page_size=1):
            pass
    assert len(fake.queries) == MAX_PAGES


def test_php_notice_before_the_json_is_retryable_not_data_error(
    rsps: responses.RequestsMock,
) -> None:
    """A notice PHP printed before the JSON (display_errors on) is not the order's fault:
    a retryable error naming it, never a DataError that would need attention."""
    notice = "<br />\n<b>Deprecated</b>: Function strftime() is deprecated\n"
    rsps.add(
        responses.GET, f"{API}/orders/5", body=notice + json.dumps(order(5, "576")),
        content_type="application/json",
    )  # fmt: skip
    with make_client(attempts=2) as client, pytest.raises(RetryableApiError) as info:
        client.get_order(5)
    assert "Deprecated" in info.value.message
    assert "display_errors" in (info.value.hint or "")
