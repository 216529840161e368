"""Each page reads its records in one batched call per kind, counted in the simulators'
journals: no per-event order reads, and a second event of one order still decides on what
the first one's write left behind."""

from __future__ import annotations

from cancelsync.sandbox.harness import PlacedOrder

from .conftest import Harness

ORDER_SEARCH = "GET orders"
ORDER_GET = r"GET orders/\{id\}"
MEMO_SEARCH = "GET creditmemos"
TIKTOK_DETAIL = r"GET /order/\{v\}/orders"
CANCEL_SEARCH = r"POST /return_refund/\{v\}/cancellations/search"


def _magento(harness: Harness, endpoint: str) -> int:
    return harness.sb.magento_server.journal.count(endpoint)


def _tiktok(harness: Harness, endpoint: str) -> int:
    return harness.sb.tiktok_server.journal.count(endpoint)


def _orders(harness: Harness, count: int) -> list[PlacedOrder]:
    return [
        harness.sb.place_order([{"sku": f"SKU-{i}", "qty": 1, "price": 5.0 + i}])
        for i in range(count)
    ]


def test_refunds_read_the_pages_orders_in_one_search(harness: Harness) -> None:
    """Five buyer cancellations cost one Magento order search and one TikTok detail
    call besides their five refunds: no order is read alone."""
    harness.sb.add_store("us-main")
    for placed in _orders(harness, 5):
        harness.sb.tiktok.buyer_cancel(placed.tiktok_order_id)

    rc, _ = harness.run("run", "--once")

    assert rc == 0
    assert harness.refund_posts() == 5
    assert _magento(harness, ORDER_SEARCH) == 1
    assert _magento(harness, ORDER_GET) == 0
    assert _magento(harness, MEMO_SEARCH) == 0  # no order shows an earlier refund
    assert _tiktok(harness, TIKTOK_DETAIL) == 1


def test_linked_orders_and_their_memos_are_read_in_one_search_each(
    harness: Harness,
) -> None:
    """Orders linked (and partly refunded) in an earlier run are read in one
    ``entity_id in`` search, their credit memos (the marker check) in one more."""
    harness.sb.add_store("us-main")
    placed = [
        harness.sb.place_order(
            [{"sku": f"A{i}", "qty": 1, "price": 5.0}, {"sku": f"B{i}", "qty": 1,
                                                      "price": 6.0}]
        )
        for i in range(3)
    ]  # fmt: skip
    lines = [harness.sb.tiktok.order(p.tiktok_order_id)["line_items"] for p in placed]
    for order, items in zip(placed, lines, strict=True):
        harness.sb.tiktok.buyer_cancel(order.tiktok_order_id, line_ids=[items[0]["id"]])
    assert harness.run("run", "--once")[0] == 0
    harness.sb.magento_server.journal.clear()
    for order, items in zip(placed, lines, strict=True):
        harness.sb.tiktok.buyer_cancel(order.tiktok_order_id, line_ids=[items[1]["id"]])

    rc, _ = harness.run("run", "--once")

    assert rc == 0
    assert harness.refund_posts() == 3  # this run's (the journal was cleared)
    [search] = harness.sb.magento_server.journal.entries(ORDER_SEARCH)
    assert ("searchCriteria[filter_groups][0][filters][0][field]", "entity_id") in (
        search.query
    )
    assert _magento(harness, ORDER_GET) == 0
    assert _magento(harness, MEMO_SEARCH) == 1


def test_second_cancellation_of_one_order_reads_it_again(harness: Harness) -> None:
    """Two line cancellations of one order on one page: the second reads the order
    after the first refund and refunds only its own line."""
    harness.sb.add_store("us-main")
    placed = harness.sb.place_order(
        [{"sku": sku, "qty": 1, "price": 5.0} for sku in ("A", "B", "C")]
    )
    lines = harness.sb.tiktok.order(placed.tiktok_order_id)["line_items"]
    harness.sb.tiktok.buyer_cancel(placed.tiktok_order_id, line_ids=[lines[0]["id"]])
    harness.sb.tiktok.buyer_cancel(placed.tiktok_order_id, line_ids=[lines[1]["id"]])

    rc, _ = harness.run("run", "--once")

    assert rc == 0
    memos = harness.memos(placed.magento_entity_id)
    refunded = sorted(item["sku"] for memo in memos for item in memo["items"])
    assert refunded == ["A", "B"]
    assert harness.refund_posts() == 2
    assert _magento(harness, ORDER_GET) == 1  # the second event's fresh read


def test_lost_database_marker_check_reads_memos_once_per_page(
    harness: Harness,
) -> None:
    """After the database is lost, three refunded orders' credit memos are read in one
    search, the markers are found and nothing is refunded again."""
    harness.sb.add_store("us-main")
    for placed in _orders(harness, 3):
        harness.sb.tiktok.buyer_cancel(placed.tiktok_order_id)
    assert harness.run("run", "--once")[0] == 0
    assert harness.refund_posts() == 3
    (harness.folder / "cancelsync.db").unlink()
    harness.sb.magento_server.journal.clear()

    rc, _ = harness.run("run", "--once")

    assert rc == 0
    assert harness.refund_posts() == 0
    assert _magento(harness, MEMO_SEARCH) == 1
    assert _magento(harness, ORDER_GET) == 0


def test_cancels_read_the_pages_orders_in_one_call_each(harness: Harness) -> None:
    """Five credit memos cost one Magento order search and one TikTok detail call
    besides their five cancels; no cancellation search without a buyer request."""
    harness.sb.add_store("us-main", refund_to_cancel=True, cancel_to_refund=False)
    for placed in _orders(harness, 5):
        harness.sb.magento.create_credit_memo(placed.magento_entity_id, None)

    rc, _ = harness.run("run", "--once")

    assert rc == 0
    assert harness.cancel_posts() == 5
    assert _magento(harness, ORDER_SEARCH) == 1
    assert _magento(harness, ORDER_GET) == 0
    assert _tiktok(harness, TIKTOK_DETAIL) == 1
    assert _tiktok(harness, CANCEL_SEARCH) == 0


def test_cancellations_are_searched_only_for_orders_with_a_buyer_request(
    harness: Harness,
) -> None:
    """Of three memos, only the order whose detail shows a buyer request is searched
    for its request, which is approved; the others are seller-cancelled."""
    harness.sb.add_store("us-main", refund_to_cancel=True, cancel_to_refund=False)
    placed = _orders(harness, 3)
    harness.sb.tiktok.buyer_cancel(placed[1].tiktok_order_id, pending=True)
    for order in placed:
        harness.sb.magento.create_credit_memo(order.magento_entity_id, None)

    rc, _ = harness.run("run", "--once")

    assert rc == 0
    [search] = harness.sb.tiktok_server.journal.entries(CANCEL_SEARCH)
    assert search.json()["order_ids"] == [placed[1].tiktok_order_id]
    approvals = _tiktok(
        harness, r"POST /return_refund/202309/cancellations/\{cancel_id\}/approve"
    )
    assert approvals == 1
    assert harness.cancel_posts() == 2
