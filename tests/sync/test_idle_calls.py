"""An idle cycle costs one call per enabled direction, counted in the simulators'
journals: B's order-search cross-check has its own slower cadence, A's keyset and its
late-commit re-scan are one query, and a bound shop needs no authorization call."""

from __future__ import annotations

from collections import Counter
from typing import Any

from cancelsync.sandbox.common import Fault
from cancelsync.sandbox.hostile import TIKTOK_CANCEL_SEARCH, HostileTikTok
from cancelsync.sync.tiktok_to_magento import CROSS_CHECK_STREAM

from .conftest import Harness

ORDER_SEARCH = r"POST /order/202309/orders/search"
SHOPS = r"GET /authorization/202309/shops"


def _calls(harness: Harness) -> Counter[str]:
    entries = [
        *harness.sb.magento_server.journal.entries(),
        *harness.sb.tiktok_server.journal.entries(),
    ]
    return Counter(e.endpoint for e in entries)


def _without_records(body: Any) -> Any:
    """A cancellation search reply that shows no record at all."""
    body["data"]["cancellations"] = []
    return body


def _clear(harness: Harness) -> None:
    harness.sb.magento_server.journal.clear()
    harness.sb.tiktok_server.journal.clear()


def test_idle_cycle_is_one_call_per_direction(harness: Harness) -> None:
    """After the first run, a cycle with nothing new makes one TikTok cancellation search
    and one Magento credit memo search, and no authorization or order-search call."""
    harness.sb.add_store("us-main", refund_to_cancel=True)
    assert harness.run("run", "--once")[0] == 0
    assert _calls(harness)[SHOPS] == 1  # the first run binds the shop
    _clear(harness)

    for _ in range(2):
        assert harness.run("run", "--once")[0] == 0

    assert _calls(harness) == {
        r"POST /return_refund/{v}/cancellations/search": 2,
        "GET creditmemos": 2,
    }


def test_cross_check_runs_when_its_interval_has_passed(harness: Harness) -> None:
    """The order search runs on the fresh first run, not on the next one, and again
    once the interval has passed since the last one (its own cursor stream)."""
    harness.sb.add_store("us-main")
    assert harness.run("run", "--once")[0] == 0
    assert _calls(harness)[ORDER_SEARCH] == 1
    assert harness.run("run", "--once")[0] == 0
    assert _calls(harness)[ORDER_SEARCH] == 1
    store = harness.store()
    try:
        store.db.execute(
            "UPDATE cursors SET position = position - 3600 WHERE stream = ?",
            [CROSS_CHECK_STREAM],
        )
    finally:
        store.close()

    assert harness.run("run", "--once")[0] == 0

    assert _calls(harness)[ORDER_SEARCH] == 2


def test_interval_zero_cross_checks_every_cycle(harness: Harness) -> None:
    """``cross_check_interval_seconds = 0`` searches cancelled orders every cycle."""
    harness.sb.add_store("us-main")
    for _ in range(3):
        assert harness.run("run", "--once", cross_check_interval_seconds=0)[0] == 0

    assert _calls(harness)[ORDER_SEARCH] == 3


def test_cancelled_order_without_record_is_refunded_at_the_next_cross_check(
    harness: Harness,
) -> None:
    """An order cancelled with no record TikTok shows is refunded once the cross-check
    is due, from where the last cross-check got."""
    harness.sb.add_store("us-main")
    placed = harness.sb.place_order([{"sku": "A", "qty": 1, "price": 5.0}])
    assert harness.run("run", "--once")[0] == 0
    harness.sb.tiktok.buyer_cancel(placed.tiktok_order_id)
    hostile = HostileTikTok.install(harness.sb.tiktok_server)
    hostile.rewrite_json(TIKTOK_CANCEL_SEARCH, _without_records)

    assert harness.run("run", "--once")[0] == 0
    assert harness.refund_posts() == 0  # not due yet, and the record is not shown
    assert harness.run("run", "--once", cross_check_interval_seconds=0)[0] == 0

    assert harness.refund_posts() == 1


def test_a_failed_cross_check_refund_is_retried_from_the_order(
    harness: Harness,
) -> None:
    """The cross-check's stand-in (``order-<id>``) has no TikTok record to find again:
    its retry reads the order, still cancelled, and refunds it."""
    harness.sb.add_store("us-main")
    placed = harness.sb.place_order([{"sku": "A", "qty": 1, "price": 5.0}])
    harness.sb.tiktok.buyer_cancel(placed.tiktok_order_id)
    hostile = HostileTikTok.install(harness.sb.tiktok_server)
    hostile.rewrite_json(TIKTOK_CANCEL_SEARCH, _without_records)
    harness.sb.magento_faults.next_calls(
        r"POST order/\{id\}/refund", Fault("status", status=503), count=20
    )

    assert harness.run("run", "--once", retry_backoff_seconds=0)[0] == 1
    (row,) = harness.ledger()
    assert (row.state, row.tiktok_cancel_id) == (
        "failed",
        f"order-{placed.tiktok_order_id}",
    )
    harness.sb.magento_faults.clear()

    assert harness.run("run", "--once", retry_backoff_seconds=0)[0] == 0

    (row,) = harness.ledger()
    assert row.state == "done"
    assert len(harness.memos(placed.magento_entity_id)) == 1
