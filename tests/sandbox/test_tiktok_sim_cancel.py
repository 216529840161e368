"""The TikTok simulator's cancellation flows over real HTTP (reference §5)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from cancelsync.clock import to_epoch
from cancelsync.sandbox.common import Fault, SimulatorServer

try:
    from test_tiktok_sim_support import Env, idle_server, make_env, one_order
except ImportError:  # pragma: no cover - when tests/ becomes a package
    from .test_tiktok_sim_support import Env, idle_server, make_env, one_order

CANCEL = "/return_refund/202309/cancellations"
SEARCH = "/return_refund/202309/cancellations/search"
SEARCH_2602 = "/return_refund/202602/cancellations/search"
OOS = "seller_cancel_reason_out_of_stock"
ADDRESS = "seller_cancel_paid_reason_address_not_deliver"

# Reference §5.4, written out again here so the simulator's table is checked against it.
US_UNPAID = [
    "seller_cancel_unpaid_reason_out_of_stock",
    "seller_cancel_unpaid_reason_wrong_price",
    "seller_cancel_unpaid_reason_buyer_hasnt_paid_within_time_allowed",
    "seller_cancel_unpaid_reason_buyer_requested_cancellation",
]
US_PAID = [
    "seller_cancel_reason_out_of_stock",
    "seller_cancel_reason_wrong_price",
    "seller_cancel_paid_reason_address_not_deliver",
    "seller_cancel_paid_reason_buyer_requested_cancellation",
]
UK_UNPAID = [k + "_uk" for k in US_UNPAID[:3]]
UK_PAID = [
    "seller_cancel_reason_out_of_stock_uk",
    "seller_cancel_reason_wrong_price_uk",
    "seller_cancel_paid_reason_address_not_deliver_uk",
]
TABLE = {
    ("US", "UNPAID"): US_UNPAID,
    ("US", "AWAITING_SHIPMENT"): US_PAID,
    ("US", "ON_HOLD"): US_PAID,
    ("UK", "UNPAID"): UK_UNPAID,
    ("UK", "AWAITING_SHIPMENT"): UK_PAID,
    **{(eu, "UNPAID"): US_UNPAID for eu in ("ES", "IE", "FR", "DE", "IT")},
    **{(eu, "AWAITING_SHIPMENT"): US_PAID for eu in ("ES", "IE", "FR", "DE", "IT")},
    ("SG", "AWAITING_SHIPMENT"): [
        *US_PAID[:2],
        "seller_cancel_unable_to_deliver_to_buyer_address",
    ],
}


@pytest.fixture(scope="module")
def server() -> Iterator[SimulatorServer]:
    with idle_server() as srv:
        yield srv


@pytest.fixture
def env(server: SimulatorServer) -> Iterator[Env]:
    with make_env(server) as environment:
        yield environment


def _cancel(env: Env, order_id: str, reason: str, **extra: Any) -> dict[str, Any]:
    payload: dict[str, Any] = env.api.call(
        "POST", CANCEL, body={"order_id": order_id, "cancel_reason": reason, **extra}
    ).json()
    return payload


def _search(env: Env, body: dict[str, Any], path: str = SEARCH, **params: str) -> Any:
    return env.api.ok("POST", path, params, body)


def _now(env: Env) -> int:
    return to_epoch(env.clock.now())


# ---------------------------------------------------------------------- seller cancel


def test_seller_cancel_cancels_the_whole_order(env: Env) -> None:
    """A seller cancel answers SUCCESS and leaves a CANCELLED order and a SELLER record."""
    order_id = one_order(env, quantity=2, tax="1.60")
    reply = _cancel(env, order_id, ADDRESS)
    assert reply["code"] == 0
    assert reply["data"]["cancel_status"] == "CANCELLATION_REQUEST_SUCCESS"
    order = env.sim.order(order_id)
    assert order["status"] == "CANCELLED"
    assert order["cancellation_initiator"] == "SELLER"
    assert order["cancel_reason"] == "Unable to deliver to customer address"
    assert {li["display_status"] for li in order["line_items"]} == {"CANCELLED"}
    assert {li["cancel_user"] for li in order["line_items"]} == {"SELLER"}
    (record,) = _search(env, {"order_ids": [order_id]})["cancellations"]
    assert record["cancel_id"] == reply["data"]["cancel_id"]
    assert (record["role"], record["cancel_type"]) == ("SELLER", "CANCEL")
    assert record["cancel_status"] == "CANCELLATION_REQUEST_COMPLETE"
    assert record["cancel_reason"] == ADDRESS
    assert record["refund_amount"]["refund_total"] == "26.60"
    assert record["refund_amount"]["refund_shipping_fee"] == "5.00"
    assert len(record["cancel_line_items"]) == 2
    line_totals = [
        li["refund_amount"]["refund_total"] for li in record["cancel_line_items"]
    ]
    assert sum(float(t) for t in line_totals) == pytest.approx(26.60)
    assert record["should_replenish_stock"] is True


def _shipped(env: Env) -> str:
    order_id = one_order(env)
    env.sim.ship(order_id)
    return order_id


def _collecting(env: Env) -> str:
    order_id = one_order(env)
    env.sim.ship(order_id, collected=False)
    return order_id


def _completed(env: Env) -> str:
    order_id = _shipped(env)
    env.sim.deliver(order_id)
    env.sim.complete(order_id)
    return order_id


def _buyer_cancelled(env: Env) -> str:
    order_id = one_order(env)
    env.sim.buyer_cancel(order_id)
    return order_id


def _seller_cancelled(env: Env) -> str:
    order_id = one_order(env)
    assert _cancel(env, order_id, ADDRESS)["code"] == 0
    return order_id


def _pending(env: Env) -> str:
    order_id = one_order(env)
    env.sim.buyer_cancel(order_id, pending=True)
    return order_id


def _unpaid(env: Env) -> str:
    return one_order(env, status="UNPAID")


@pytest.mark.parametrize(
    ("make", "reason", "code"),
    [
        (_shipped, ADDRESS, 25001045),
        (_collecting, ADDRESS, 25001045),
        (_completed, ADDRESS, 25001051),
        (_buyer_cancelled, ADDRESS, 25001051),
        (_seller_cancelled, ADDRESS, 25001011),
        (_pending, ADDRESS, 25001011),
        (_unpaid, ADDRESS, 25001021),
        (one_order, "seller_cancel_unpaid_reason_wrong_price", 25001021),
        (one_order, "seller_cancel_reason_no_such_thing", 25001014),
        (one_order, "Out of stock", 25001014),
        (one_order, "ecom_order_to_ship_canceled_reason_other", 25001015),
    ],
)
def test_seller_cancel_error_codes(
    env: Env, make: Callable[[Env], str], reason: str, code: int
) -> None:
    """Each refused seller cancel answers its reference §5.7 code and changes nothing."""
    order_id = make(env)
    before = env.sim.order(order_id)
    reply = _cancel(env, order_id, reason)
    assert reply["code"] == code, reply
    assert env.sim.order(order_id) == before


def test_retired_reason_and_unknown_order(env: Env) -> None:
    """A retired key answers 25001020; an order of another shop answers 25001001."""
    order_id = one_order(env)
    env.sim.retire_reason(ADDRESS)
    assert _cancel(env, order_id, ADDRESS)["code"] == 25001020
    other_shop = env.sim.add_shop(region="US")
    foreign = env.sim.create_order(
        other_shop, [{"sku_id": "1", "seller_sku": "X", "price": "1"}]
    )
    assert _cancel(env, foreign, OOS)["code"] == 25001001
    assert _cancel(env, order_id, "")["code"] == 25001001


def test_replaced_reason_is_retired_and_its_successor_listed_and_accepted(
    env: Env,
) -> None:
    """replace_reason: the table's key answers 25001020, eligibility lists the new key
    in its place and a cancel with it succeeds."""
    new_key = "seller_cancel_paid_reason_unable_to_deliver_address_v2"
    env.sim.replace_reason(ADDRESS, new_key)
    order_id = one_order(env)
    assert _cancel(env, order_id, ADDRESS)["code"] == 25001020
    data = env.api.ok(
        "GET",
        f"/return_refund/202512/orders/{order_id}/aftersale_eligibility",
        {"initiate_aftersale_user": "SELLER", "request_types": "CANCEL"},
    )
    (sku,) = data["sku_eligibility"]
    (entry,) = sku["line_item_eligibility"]
    expected = [new_key if k == ADDRESS else k for k in US_PAID]
    assert entry["available_reason_names"] == expected
    assert _cancel(env, order_id, new_key)["code"] == 0
    assert env.sim.order(order_id)["status"] == "CANCELLED"


@pytest.mark.parametrize(("market", "status"), sorted(TABLE))
def test_reason_tables_per_market_and_status(
    market: str, status: str, server: SimulatorServer
) -> None:
    """Eligibility lists §5.4's keys, each is accepted, and the other status's keys are not."""
    with make_env(server, market) as env:
        probe = one_order(env, status=status)
        data = env.api.ok(
            "GET",
            f"/return_refund/202512/orders/{probe}/aftersale_eligibility",
            {"initiate_aftersale_user": "SELLER", "request_types": "CANCEL"},
        )
        (sku,) = data["sku_eligibility"]
        (entry,) = sku["line_item_eligibility"]
        assert entry["eligible"] is True
        assert entry["available_reason_names"] == TABLE[(market, status)]
        for key in TABLE[(market, status)]:
            order_id = one_order(env, status=status)
            assert _cancel(env, order_id, key)["code"] == 0, key
        other = "UNPAID" if status != "UNPAID" else "AWAITING_SHIPMENT"
        for key in TABLE.get((market, other), []):
            order_id = one_order(env, status=status)
            assert _cancel(env, order_id, key)["code"] == 25001021, key


@pytest.mark.parametrize(
    ("market", "reason"),
    [
        ("US", "seller_cancel_reason_out_of_stock_uk"),
        ("UK", "seller_cancel_reason_out_of_stock"),
        ("UK", "seller_cancel_paid_reason_buyer_requested_cancellation"),
        ("FR", "seller_cancel_paid_reason_address_not_deliver_uk"),
        ("SG", "seller_cancel_paid_reason_address_not_deliver"),
    ],
)
def test_keys_of_another_market_are_unknown(
    market: str, reason: str, server: SimulatorServer
) -> None:
    """A key that exists only in another market's table answers 25001014."""
    with make_env(server, market) as env:
        assert _cancel(env, one_order(env), reason)["code"] == 25001014


def test_french_shop_texts_are_localized(server: SimulatorServer) -> None:
    """A French shop shows localized text on the order and keys on the record."""
    with make_env(server, "FR") as env:
        order_id = one_order(env)
        env.sim.buyer_cancel(
            order_id, reason="ecom_order_to_ship_canceled_reason_other"
        )
        assert env.sim.order(order_id)["cancel_reason"] == "Autre"
        (record,) = _search(env, {})["cancellations"]
        assert record["cancel_reason"] == "ecom_order_to_ship_canceled_reason_other"
        assert record["cancel_reason_text"] == "Autre"
        (english,) = _search(env, {"locale": "en-US"})["cancellations"]
        assert english["cancel_reason_text"] == "Other"


# ---------------------------------------------------------------------- partial cancel


@pytest.mark.parametrize("market", ["US", "UK"])
def test_partial_cancel_by_skus_in_us_and_uk(
    market: str, server: SimulatorServer
) -> None:
    """US/UK cancel some units out of stock: the order lives on, its stock is zeroed."""
    with make_env(server, market) as env:
        order_id = one_order(env, quantity=3, tax="3.00")
        reason = OOS if market == "US" else OOS + "_uk"
        skus = [{"sku_id": "1729000000000000001", "quantity": 2}]
        assert _cancel(env, order_id, reason, skus=skus)["code"] == 0
        order = env.sim.order(order_id)
        assert order["status"] == "AWAITING_SHIPMENT"
        statuses = [li["display_status"] for li in order["line_items"]]
        assert statuses == ["CANCELLED", "CANCELLED", "AWAITING_SHIPMENT"]
        assert env.sim.zeroed_skus(env.shop_id) == {"1729000000000000001"}
        (first,) = env.sim.cancellations(order_id)
        assert first["refund_amount"]["refund_subtotal"] == "20.00"
        assert first["refund_amount"]["refund_shipping_fee"] == "0.00"
        assert first["refund_amount"]["refund_tax"] == "2.00"
        assert first["should_replenish_stock"] is False
        line_taxes = [
            li["refund_amount"]["refund_tax"] for li in first["cancel_line_items"]
        ]
        assert line_taxes == ["1.00", "1.00"]
        rest = [order["line_items"][2]["id"]]
        assert _cancel(env, order_id, reason, order_line_item_ids=rest)["code"] == 0
        assert env.sim.order(order_id)["status"] == "CANCELLED"
        last = env.sim.cancellations(order_id)[1]["refund_amount"]
        assert (last["refund_shipping_fee"], last["refund_tax"]) == ("5.00", "1.00")


@pytest.mark.parametrize(
    ("market", "reason"),
    [
        ("FR", OOS),
        ("DE", OOS),
        ("US", "seller_cancel_reason_wrong_price"),
        ("US", ADDRESS),
    ],
)
def test_partial_cancel_elsewhere_is_25005010(
    market: str, reason: str, server: SimulatorServer
) -> None:
    """Line selection outside US/UK or without an out-of-stock reason is refused."""
    with make_env(server, market) as env:
        order_id = one_order(env, quantity=2)
        line_id = env.sim.order(order_id)["line_items"][0]["id"]
        reply = _cancel(env, order_id, reason, order_line_item_ids=[line_id])
        assert reply["code"] == 25005010
        assert env.sim.order(order_id)["status"] == "AWAITING_SHIPMENT"


def test_partial_cancel_bad_selections(env: Env) -> None:
    """Too many units, unknown lines or two kinds of selection are refused."""
    order_id = one_order(env, quantity=2)
    too_many = [{"sku_id": "1729000000000000001", "quantity": 3}]
    assert _cancel(env, order_id, OOS, skus=too_many)["code"] == 25005010
    assert _cancel(env, order_id, OOS, order_line_item_ids=["1"])["code"] == 25005010
    line_id = env.sim.order(order_id)["line_items"][0]["id"]
    both = {"skus": too_many, "order_line_item_ids": [line_id]}
    assert _cancel(env, order_id, OOS, **both)["code"] == 25001001


def test_partially_shipped_order_cancels_only_unshipped_lines(env: Env) -> None:
    """In PARTIALLY_SHIPPING only unshipped lines can go, and the order moves on."""
    order_id = one_order(env, quantity=2)
    shipped, waiting = (li["id"] for li in env.sim.order(order_id)["line_items"])
    env.sim.ship(order_id, [shipped])
    assert env.sim.order(order_id)["status"] == "PARTIALLY_SHIPPING"
    assert _cancel(env, order_id, OOS)["code"] == 25001045
    assert (
        _cancel(env, order_id, OOS, order_line_item_ids=[shipped])["code"] == 25001045
    )
    assert _cancel(env, order_id, OOS, order_line_item_ids=[waiting])["code"] == 0
    assert env.sim.order(order_id)["status"] == "IN_TRANSIT"


# ---------------------------------------------------------------------- buyer requests


def _pending_request(env: Env) -> tuple[str, str]:
    order_id = one_order(env)
    cancel_id = env.sim.buyer_cancel(order_id, pending=True)
    return order_id, cancel_id


def test_pending_request_is_visible_and_approve_is_idempotent(env: Env) -> None:
    """A pending request shows its deadline; approve cancels, a same-key replay is a no-op."""
    order_id, cancel_id = _pending_request(env)
    body = {
        "cancel_types": ["BUYER_CANCEL"],
        "cancel_status": ["CANCELLATION_REQUEST_PENDING"],
    }
    (record,) = _search(env, body)["cancellations"]
    assert record["cancel_id"] == cancel_id
    assert record["role"] == "BUYER"
    assert record["seller_next_action_response"] == [
        {"action": "SELLER_RESPOND_CANCEL", "deadline": _now(env) + 86400}
    ]
    (newer,) = _search(env, body, SEARCH_2602)["cancellations"]
    assert (
        newer["seller_next_action_response"][0]["action"]
        == "SELLER_RESPOND_BUYER_CANCEL"
    )
    assert env.sim.order(order_id)["is_buyer_request_cancel"] is True
    approve = f"{CANCEL}/{cancel_id}/approve"
    key = {"idempotency_key": "approve-1"}
    assert env.api.code("POST", approve, key, {}) == 0
    assert env.api.code("POST", approve, key, {}) == 0  # replay of the same key
    assert env.api.code("POST", approve, {"idempotency_key": "other"}, {}) == 25001001
    order = env.sim.order(order_id)
    assert (order["status"], order["cancellation_initiator"]) == ("CANCELLED", "BUYER")
    (done,) = env.sim.cancellations(order_id)
    assert done["cancel_status"] == "CANCELLATION_REQUEST_COMPLETE"
    assert "seller_next_action_response" not in done


def test_reject_closes_the_request_and_the_order_carries_on(env: Env) -> None:
    """Reject needs a known reason, closes the request (both spellings) and keeps the order."""
    order_id, cancel_id = _pending_request(env)
    reject = f"{CANCEL}/{cancel_id}/reject"
    assert env.api.code("POST", reject, body={}) == 25001001
    assert env.api.code("POST", reject, body={"reject_reason": "nope"}) == 25001014
    reasons = env.api.ok(
        "GET",
        "/return_refund/202309/reject_reasons",
        {"return_or_cancel_id": cancel_id},
    )["reasons"]
    assert [r["name"] for r in reasons] == [
        "ecom_reverse_reject_cancel_reason_product_packed"
    ]
    assert env.api.code("POST", reject, body={"reject_reason": reasons[0]["name"]}) == 0
    order = env.sim.order(order_id)
    assert (order["status"], order["is_buyer_request_cancel"]) == (
        "AWAITING_SHIPMENT",
        False,
    )
    (old,) = _search(env, {"order_ids": [order_id]})["cancellations"]
    (new,) = _search(env, {"order_ids": [order_id]}, SEARCH_2602)["cancellations"]
    assert old["cancel_status"] == "CANCELLATION_REQUEST_CANCEL"
    assert new["cancel_status"] == "CANCELLATION_REQUEST_CANCELLED"
    alias = {"cancel_status": ["CANCELLATION_REQUEST_CANCELLED"]}
    assert len(_search(env, alias)["cancellations"]) == 1
    assert _cancel(env, order_id, ADDRESS)["code"] == 0


def test_pending_request_is_auto_approved_after_24_hours(env: Env) -> None:
    """Unanswered for 24 h, a request is approved, stamped at its deadline."""
    order_id, cancel_id = _pending_request(env)
    deadline = _now(env) + 86400
    env.clock.advance(86399)
    assert env.sim.order(order_id)["status"] == "AWAITING_SHIPMENT"
    env.clock.advance(3600)
    body = {"cancel_status": ["CANCELLATION_REQUEST_COMPLETE"]}
    (record,) = _search(env, body)["cancellations"]
    assert (record["cancel_id"], record["update_time"]) == (cancel_id, deadline)
    order = env.sim.order(order_id)
    assert (order["status"], order["cancel_time"]) == ("CANCELLED", deadline)
    code = env.api.code("POST", f"{CANCEL}/{cancel_id}/approve", body={})
    assert code == 25001001


# ---------------------------------------------------------------------- search, roles, timing


def test_cancellation_search_filters_sorting_and_pages(env: Env) -> None:
    """Search filters by ids, type, status and time, sorts, and pages with + / = tokens."""
    start = _now(env)
    ids = []
    for _ in range(12):
        ids.append(env.sim.system_cancel(one_order(env, status="UNPAID")))
        env.clock.advance(10)
    pending_order, pending_id = _pending_request(env)
    page = _search(env, {})
    assert len(page["cancellations"]) == 10  # default page_size
    assert page["total_count"] == 13
    assert {"+", "/", "="} <= set(page["next_page_token"])
    rest = _search(env, {}, page_token=page["next_page_token"])
    assert "next_page_token" not in rest  # absent on the last page
    walked = [c["cancel_id"] for c in page["cancellations"] + rest["cancellations"]]
    assert walked == [*ids, pending_id]  # create_time ASC by default
    assert [
        c["cancel_id"] for c in _search(env, {"cancel_ids": ids[3:5]})["cancellations"]
    ] == (ids[3:5])
    buyer = _search(env, {"cancel_types": ["BUYER_CANCEL"]})["cancellations"]
    assert [c["order_id"] for c in buyer] == [pending_order]
    window = {"update_time_ge": start + 20, "update_time_lt": start + 40}
    assert [c["cancel_id"] for c in _search(env, window)["cancellations"]] == ids[2:4]
    desc = _search(env, {}, sort_field="update_time", sort_order="DESC", page_size="3")
    assert [c["cancel_id"] for c in desc["cancellations"]] == [
        pending_id,
        ids[11],
        ids[10],
    ]
    assert env.api.code("POST", SEARCH, {"page_size": "51"}, {}) == 36009004
    assert env.api.code("POST", SEARCH, {}, {"cancel_types": ["SELLER"]}) == 36009004


def test_roles_of_system_operator_and_seller_center(env: Env) -> None:
    """System, operator and Seller Center cancels carry their roles; OPERATOR shows in 202602."""
    system = env.sim.system_cancel(one_order(env, status="UNPAID"))
    operator = env.sim.operator_cancel(one_order(env))
    seller = env.sim.seller_center_cancel(one_order(env), ADDRESS)
    old = {c["cancel_id"]: c for c in _search(env, {})["cancellations"]}
    new = {c["cancel_id"]: c for c in _search(env, {}, SEARCH_2602)["cancellations"]}
    assert (old[system]["role"], old[system]["cancel_reason"]) == (
        "SYSTEM",
        "system_cancel_unpaid_time_out",
    )
    assert (old[operator]["role"], new[operator]["role"]) == ("SYSTEM", "OPERATOR")
    assert old[seller]["role"] == "SELLER"
    assert old[system]["refund_amount"]["refund_total"] == "0.00"  # never paid


def test_partial_cancel_scenario_by_buyer_keeps_the_order_live(env: Env) -> None:
    """partial_cancel cancels some lines as the given role and the order stays live."""
    order_id = one_order(env, quantity=2)
    line_id = env.sim.order(order_id)["line_items"][0]["id"]
    cancel_id = env.sim.partial_cancel(order_id, [line_id], role="SYSTEM")
    order = env.sim.order(order_id)
    assert order["status"] == "AWAITING_SHIPMENT"
    assert order["line_items"][0]["cancel_user"] == "SYSTEM"
    (record,) = env.sim.cancellations(order_id)
    assert record["cancel_id"] == cancel_id
    assert [li["order_line_item_id"] for li in record["cancel_line_items"]] == [line_id]


def test_refund_delay_shows_success_before_complete(server: SimulatorServer) -> None:
    """With a refund lag a cancel is SUCCESS first and COMPLETE once the lag passes."""
    with make_env(server, refund_delay_seconds=600) as env:
        order_id = one_order(env)
        assert _cancel(env, order_id, ADDRESS)["code"] == 0
        (record,) = env.sim.cancellations(order_id)
        assert record["cancel_status"] == "CANCELLATION_REQUEST_SUCCESS"
        due = _now(env) + 600
        env.clock.advance(900)
        (record,) = _search(env, {})["cancellations"]
        assert (record["cancel_status"], record["update_time"]) == (
            "CANCELLATION_REQUEST_COMPLETE",
            due,
        )


def test_eligibility_202309_and_shipped_orders(env: Env) -> None:
    """202309 eligibility has no reason names; a shipped order's lines are ineligible."""
    order_id = one_order(env)
    path = f"/return_refund/202309/orders/{order_id}/aftersale_eligibility"
    data = env.api.ok("GET", path, {"initiate_aftersale_user": "SELLER"})
    cancel = next(
        e
        for e in data["sku_eligibility"][0]["line_item_eligibility"]
        if e["request_type"] == "CANCEL"
    )
    assert cancel["eligible"] is True
    assert "available_reason_names" not in cancel
    env.sim.ship(order_id)
    path = f"/return_refund/202602/orders/{order_id}/aftersale_eligibility"
    params = {"initiate_aftersale_user": "SELLER", "request_types": "CANCEL"}
    (entry,) = env.api.ok("GET", path, params)["sku_eligibility"][0][
        "line_item_eligibility"
    ]
    assert (entry["eligible"], entry["ineligible_code"]) == (False, 25001001)
    assert env.api.code("GET", path, {"initiate_aftersale_user": "NOBODY"}) == 36009004


# ---------------------------------------------------------------------- transport faults


def test_lost_response_still_applies_the_cancel(env: Env) -> None:
    """With lost_response the cancel happens though the client sees no reply."""
    order_id = one_order(env)
    env.server.faults.next_calls(
        r"POST /return_refund/\{v\}/cancellations", Fault("lost_response")
    )
    with pytest.raises(requests.ConnectionError):
        _cancel(env, order_id, ADDRESS)
    assert env.sim.order(order_id)["status"] == "CANCELLED"
    assert (
        _cancel(env, order_id, ADDRESS)["code"] == 25001011
    )  # a blind retry is refused
    (entry, retry) = env.server.journal.entries(
        r"POST /return_refund/\{v\}/cancellations"
    )
    assert (entry.status, entry.fault, retry.status) == (None, "lost_response", 200)
