"""A cancellation that arrives before its order is imported into Magento.

Importers run every few minutes and a buyer may cancel right after paying, so the worker
can see a cancellation whose Magento order does not exist yet ("never imported"). When the
importer brings the order over later, as a live invoiced order, it must still be refunded
(else the warehouse ships a cancelled order): such cancellations are looked up again for
``worker.import_wait_hours``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cancelsync.sandbox.harness import PlacedOrder
from cancelsync.store.db import iso

from .conftest import BOTH_CONCURRENCIES, Harness

pytestmark = BOTH_CONCURRENCIES
LINES = [{"sku": "TEE", "qty": 2, "price": 10.0}]
SEARCHES = r"GET orders"


def _tiktok_only(harness: Harness) -> str:
    """A paid TikTok order the importer has not brought over yet."""
    spec = harness.sb.stores[0]
    return harness.sb.tiktok.create_order(
        spec.setup.shop_id,
        [{"sku_id": "1700000000000001", "seller_sku": "TEE", "price": "10.00",
          "quantity": 2, "product_name": "TEE"}],
        status="AWAITING_SHIPMENT", shipping_fee="5.00",
    )  # fmt: skip


def _import(harness: Harness, tiktok_order_id: str) -> PlacedOrder:
    entity_id = harness.sb.magento.import_tiktok_order(
        tiktok_order_id,
        [{"sku": "TEE", "qty": 2.0, "price": 10.0, "product_type": "simple"}],
        shipping_amount=5.0,
    )
    order = harness.sb.magento.order(entity_id)
    return PlacedOrder(tiktok_order_id, entity_id, str(order["increment_id"]))


def _refund_rows(harness: Harness) -> list[Any]:
    return [e for e in harness.ledger() if e.idempotency_key.startswith("refund:")]


def test_an_order_imported_after_its_cancellation_is_refunded(harness: Harness) -> None:
    harness.sb.add_store("us-main")
    tiktok_order_id = _tiktok_only(harness)
    harness.sb.tiktok.buyer_cancel(tiktok_order_id)

    rc, _ = harness.run("run", "--once")
    assert rc == 0
    (row,) = _refund_rows(harness)
    assert (row.state, row.reason_code) == ("skipped", "not_imported")

    placed = _import(harness, tiktok_order_id)
    rc, _ = harness.run("run", "--once")

    assert rc == 0
    memos = harness.memos(placed.magento_entity_id)
    assert len(memos) == 1
    assert float(memos[0]["grand_total"]) == pytest.approx(25.0)
    (row,) = _refund_rows(harness)
    assert row.state == "done"
    assert row.magento_increment_id == placed.magento_increment_id
    assert harness.status()["stores"][0]["never_imported"] == 0
    harness.run("run", "--once")
    assert harness.refund_posts() == 1


def test_waiting_cancellations_cost_one_search_per_cycle_and_none_after_the_wait(
    harness: Harness,
) -> None:
    """While one waits, each cycle adds one batched order search; past
    import_wait_hours it stays skipped (never imported) and costs nothing."""
    harness.sb.add_store("us-main")
    tiktok_order_id = _tiktok_only(harness)
    harness.sb.tiktok.buyer_cancel(tiktok_order_id)
    harness.run("run", "--once")

    journal = harness.sb.magento_server.journal
    before = journal.count(SEARCHES)
    harness.run("run", "--once")
    assert journal.count(SEARCHES) - before == 1

    _age_rows(harness, hours=25)
    before = journal.count(SEARCHES)
    _import(harness, tiktok_order_id)
    harness.run("run", "--once")
    assert journal.count(SEARCHES) == before
    assert harness.refund_posts() == 0
    (row,) = _refund_rows(harness)
    assert (row.state, row.reason_code) == ("skipped", "not_imported")


def test_an_order_imported_into_another_store_view_is_not_taken(
    harness: Harness,
) -> None:
    """With magento_store_ids, an order that turns up in another store view is not
    this store's: the cancellation stays never imported, and nothing is re-opened."""
    harness.sb.add_store("us-main", magento_store_ids=(1,))
    tiktok_order_id = _tiktok_only(harness)
    harness.sb.tiktok.buyer_cancel(tiktok_order_id)
    harness.run("run", "--once")
    harness.sb.magento.import_tiktok_order(
        tiktok_order_id,
        [{"sku": "TEE", "qty": 2.0, "price": 10.0, "product_type": "simple"}],
        shipping_amount=5.0, store_id=2,
    )  # fmt: skip

    rc, _ = harness.run("run", "--once")

    assert rc == 0
    assert harness.refund_posts() == 0
    (row,) = _refund_rows(harness)
    assert (row.state, row.reason_code) == ("skipped", "not_imported")
    assert row.magento_entity_id is None


def test_import_wait_hours_zero_turns_the_lookup_off(harness: Harness) -> None:
    harness.sb.add_store("us-main")
    tiktok_order_id = _tiktok_only(harness)
    harness.sb.tiktok.buyer_cancel(tiktok_order_id)
    harness.run("run", "--once", import_wait_hours=0)
    _import(harness, tiktok_order_id)

    harness.run("run", "--once", import_wait_hours=0)

    assert harness.refund_posts() == 0


def test_resync_refunds_a_cancellation_whose_order_was_imported_after_the_wait(
    harness: Harness,
) -> None:
    """Past the wait a person can still ask: `resync` looks the order up again."""
    harness.sb.add_store("us-main")
    tiktok_order_id = _tiktok_only(harness)
    harness.sb.tiktok.buyer_cancel(tiktok_order_id)
    harness.run("run", "--once")
    _age_rows(harness, hours=25)
    placed = _import(harness, tiktok_order_id)

    rc, out = harness.run("resync", tiktok_order_id)

    assert rc == 0, out
    assert len(harness.memos(placed.magento_entity_id)) == 1


def _age_rows(harness: Harness, *, hours: int) -> None:
    """Make every ledger row look ``hours`` old (as time passing would)."""
    then = iso(datetime.now(UTC) - timedelta(hours=hours))
    store = harness.store()
    try:
        with store.unit_of_work():
            store.db.execute("UPDATE ledger SET created_at = ?", [then])
    finally:
        store.close()


def test_a_pending_request_on_an_order_imported_late_is_held_once_it_arrives(
    harness: Harness,
) -> None:
    """hold_on_request: the buyer asks to cancel before the importer ran; once the
    order arrives in Magento (the request still pending) it is held, not shipped."""
    harness.sb.stores.clear()
    harness.sb.add_store("us-main", hold_on_request=True)
    tiktok_order_id = _tiktok_only(harness)
    cancel_id = harness.sb.tiktok.buyer_cancel(tiktok_order_id, pending=True)
    # Asked 10 minutes ago: past the overlap window, the next scan will not see it again.
    harness.sb.tiktok.backdate(cancel_id, 600)

    rc, _ = harness.run("run", "--once")
    assert rc == 0
    assert (
        harness.status()["stores"][0]["never_imported"] == 0
    )  # a request, not a cancel

    placed = _import(harness, tiktok_order_id)
    rc, _ = harness.run("run", "--once")

    assert rc == 0
    assert harness.sb.magento.order(placed.magento_entity_id)["state"] == "holded"
    (hold,) = [e for e in harness.ledger() if e.idempotency_key.startswith("hold:")]
    assert hold.state == "done"


def test_a_pending_request_on_an_order_imported_twice_needs_attention(
    harness: Harness,
) -> None:
    """hold_on_request: the late import brings the order over twice; neither is held
    (which one?), and the re-opened hold row says so once instead of staying open."""
    harness.sb.stores.clear()
    harness.sb.add_store("us-main", hold_on_request=True)
    tiktok_order_id = _tiktok_only(harness)
    cancel_id = harness.sb.tiktok.buyer_cancel(tiktok_order_id, pending=True)
    harness.sb.tiktok.backdate(cancel_id, 600)
    harness.run("run", "--once")
    _import(harness, tiktok_order_id)
    _import(harness, tiktok_order_id)

    rc, _ = harness.run("run", "--once")

    assert rc == 1
    (hold,) = [e for e in harness.ledger() if e.idempotency_key.startswith("hold:")]
    assert (hold.state, hold.reason_code) == ("needs_attention", "ambiguous_link")
    assert "keep it from shipping" in (hold.reason or "")
    assert harness.sb.magento_server.journal.count(r"POST orders/\{id\}/hold") == 0
    rc, _ = harness.run("run", "--once")
    assert rc == 0
