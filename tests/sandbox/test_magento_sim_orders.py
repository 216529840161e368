"""Orders, stock, cancel, comments and late commits in the Magento simulator (§5-§7)."""

from __future__ import annotations

from typing import Any

import pytest

from cancelsync.clock import FakeClock
from cancelsync.sandbox.magento import MagentoSimulator

try:
    from test_magento_sim_support import (
        call,
        configurable_order,
        criteria,
        item_ids,
        new_sim,
        simple_order,
    )
except ImportError:  # pragma: no cover - when tests/ becomes a package
    from .test_magento_sim_support import (
        call,
        configurable_order,
        criteria,
        item_ids,
        new_sim,
        simple_order,
    )


def restock_refund(
    sim: MagentoSimulator, order_id: int, items: list[int], returned: list[int]
) -> None:
    body = {
        "items": [{"order_item_id": i, "qty": 1} for i in items],
        "arguments": {
            "shipping_amount": 0,
            "extension_attributes": {"return_to_stock_items": returned},
        },
    }
    status, reply = call(sim, "POST", f"/rest/V1/order/{order_id}/refund", body)
    assert status == 200, reply


def test_import_builds_an_invoiced_order_with_real_fields() -> None:
    """An imported order is invoiced, paid, processing, with Magento's item rows."""
    sim = new_sim()
    order_id = configurable_order(sim)
    status, order = call(sim, "GET", f"/rest/V1/orders/{order_id}")
    assert status == 200
    assert (order["state"], order["status"], order["increment_id"]) == (
        "processing",
        "processing",
        "000000001",
    )
    assert order["ext_order_id"] == "576002"
    assert order["grand_total"] == order["total_paid"] == order["total_invoiced"] == 50
    assert order["base_grand_total"] == 50
    assert "total_refunded" not in order  # NULL columns are left out, as Magento does
    assert order["payment"]["method"] == "checkmo"
    parent, child, simple = order["items"]
    assert (parent["product_type"], parent["sku"], parent["price"]) == (
        "configurable",
        "TEE-RED-M",
        20,
    )
    assert (child["product_type"], child["sku"], child["parent_item_id"]) == (
        "simple",
        "TEE-RED-M",
        parent["item_id"],
    )
    assert "parent_item_id" not in simple
    assert all(i["qty_invoiced"] == i["qty_ordered"] for i in order["items"])


def test_stock_is_deducted_on_import() -> None:
    """Ordering deducts the simple SKUs' salable quantity (not the configurable row)."""
    sim = new_sim()
    sim.set_stock("TEE-RED-M", 10)
    configurable_order(sim)
    assert sim.stock("TEE-RED-M") == 8
    assert sim.stock("S") == 99


def test_msi_returns_only_listed_own_ids() -> None:
    """MSI returns rows whose own id is listed: the child id, not the parent's."""
    sim = new_sim()
    order_id = configurable_order(sim)
    ids = item_ids(sim, order_id)
    restock_refund(sim, order_id, [ids["TEE-RED-M:parent"]], [ids["TEE-RED-M:parent"]])
    assert sim.stock("TEE-RED-M") == 98  # parent id alone: the child is written off
    restock_refund(
        sim,
        order_id,
        [ids["TEE-RED-M:parent"], ids["S"]],
        [ids["TEE-RED-M:child"], ids["TEE-RED-M:parent"]],
    )
    assert sim.stock("TEE-RED-M") == 99
    assert sim.stock("S") == 99  # refunded but not listed: not returned


def test_legacy_inventory_also_accepts_the_parent_id() -> None:
    """Without MSI a listed parent id returns its child row too."""
    sim = new_sim(msi_enabled=False)
    order_id = configurable_order(sim)
    ids = item_ids(sim, order_id)
    restock_refund(sim, order_id, [ids["TEE-RED-M:parent"]], [ids["TEE-RED-M:parent"]])
    assert sim.stock("TEE-RED-M") == 99


def test_refund_without_restock_leaves_stock_alone() -> None:
    """No return_to_stock_items means nothing goes back to stock."""
    sim = new_sim()
    order_id = simple_order(sim)
    sim.create_credit_memo(order_id)
    assert sim.stock("A") == 98


@pytest.mark.parametrize("msi", [True, False])
def test_modules_list_reflects_msi(msi: bool) -> None:
    """GET modules lists the MSI modules only when MSI is enabled."""
    status, modules = call(new_sim(msi_enabled=msi), "GET", "/rest/V1/modules")
    assert status == 200
    assert "Magento_Sales" in modules
    assert ("Magento_Inventory" in modules) is msi
    assert ("Magento_InventorySales" in modules) is msi


def test_cancel_unpaid_order_is_true_and_restores_stock() -> None:
    """An uninvoiced order cancels (true): state canceled, qty and totals canceled."""
    sim = new_sim()
    order_id = sim.import_tiktok_order(
        "u1", [{"sku": "A", "qty": 2, "price": 10}], shipping_amount=5, invoiced=False
    )
    assert sim.stock("A") == 98
    assert call(sim, "POST", f"/rest/V1/orders/{order_id}/cancel") == (200, True)
    order = sim.order(order_id)
    assert (order["state"], order["status"], order["total_canceled"]) == (
        "canceled",
        "canceled",
        25,
    )
    assert order["items"][0]["qty_canceled"] == 2
    assert sim.stock("A") == 100
    assert call(sim, "POST", f"/rest/V1/orders/{order_id}/cancel") == (200, False)


@pytest.mark.parametrize("setup", [None, "hold_order", "set_payment_review"])
def test_cancel_is_false_when_can_cancel_is_false(setup: str | None) -> None:
    """Fully invoiced, holded or payment_review orders answer false with HTTP 200."""
    sim = new_sim()
    order_id = simple_order(sim)
    if setup:
        getattr(sim, setup)(order_id)
    assert call(sim, "POST", f"/rest/V1/orders/{order_id}/cancel") == (200, False)
    assert sim.order(order_id)["state"] != "canceled"


def test_order_comment_is_added_and_listed() -> None:
    """POST orders/{id}/comments answers true and the entry shows up in both reads."""
    sim = new_sim()
    order_id = simple_order(sim)
    body = {
        "statusHistory": {
            "comment": "cancelsync: refunded",
            "is_customer_notified": 0,
            "is_visible_on_front": 0,
        }
    }
    assert call(sim, "POST", f"/rest/V1/orders/{order_id}/comments", body) == (
        200,
        True,
    )
    order = sim.order(order_id)
    assert order["status_histories"][0]["comment"] == "cancelsync: refunded"
    assert order["status"] == "processing"
    status, listed = call(sim, "GET", f"/rest/V1/orders/{order_id}/comments")
    assert status == 200
    assert listed["total_count"] == 1
    assert listed["items"][0]["status"] == "processing"


def test_order_comment_status_rules() -> None:
    """A status of the current state changes it; another state's status is a 400."""
    sim = new_sim()
    order_id = simple_order(sim)
    path = f"/rest/V1/orders/{order_id}/comments"
    ok = {"statusHistory": {"comment": "x", "status": "fraud"}}
    assert call(sim, "POST", path, ok) == (200, True)
    assert sim.order(order_id)["status"] == "fraud"
    bad = {"statusHistory": {"comment": "x", "status": "closed"}}
    assert call(sim, "POST", path, bad) == (
        400,
        {
            "message": (
                'Unable to add comment: The status "%1" is not part of the order'
                " status history."
            ),
            "parameters": ["closed"],
        },
    )
    assert call(sim, "POST", path, {"comment": "x"})[0] == 400


def test_credit_memo_comment_needs_its_parent_in_the_body() -> None:
    """POST creditmemo/{id}/comments saves under entity.parent_id and returns it."""
    sim = new_sim()
    memo_id = sim.create_credit_memo(simple_order(sim))
    path = f"/rest/V1/creditmemo/{memo_id}/comments"
    body: dict[str, Any] = {"entity": {"comment": "synced", "is_visible_on_front": 0}}
    assert call(sim, "POST", path, body) == (
        400,
        {"message": "Could not save the creditmemo comment."},
    )
    body["entity"]["parent_id"] = memo_id
    status, saved = call(sim, "POST", path, body)
    assert status == 200
    assert (saved["parent_id"], saved["comment"]) == (memo_id, "synced")
    assert call(sim, "GET", path)[1]["total_count"] == 1


def test_hold_unhold_and_immutable_memos() -> None:
    """Hold/unhold round-trip the state; PUT creditmemo/{id} always refuses."""
    sim = new_sim()
    order_id = simple_order(sim)
    assert call(sim, "POST", f"/rest/V1/orders/{order_id}/hold") == (200, True)
    assert sim.order(order_id)["state"] == "holded"
    assert call(sim, "POST", f"/rest/V1/orders/{order_id}/hold")[0] == 400
    assert call(sim, "POST", f"/rest/V1/orders/{order_id}/unhold") == (200, True)
    assert sim.order(order_id)["state"] == "processing"
    memo_id = sim.create_credit_memo(order_id)
    assert call(sim, "PUT", f"/rest/V1/creditmemo/{memo_id}") == (
        400,
        {"message": "You can not cancel Credit Memo"},
    )


def test_shipping_then_partial_refund_keeps_complete() -> None:
    """A shipped (complete) order stays complete after a partial refund."""
    sim = new_sim()
    order_id = simple_order(sim)
    sim.ship_order(order_id)
    assert sim.order(order_id)["state"] == "complete"
    sim.create_credit_memo(order_id, {"A": 1}, shipping_amount=0)
    assert sim.order(order_id)["state"] == "complete"
    assert sim.order(order_id)["items"][0]["qty_shipped"] == 2


def test_late_commit_makes_a_lower_id_visible_after_a_higher_one() -> None:
    """A memo allocated first but committed last is invisible until commit_pending()."""
    clock = FakeClock()
    sim = new_sim(clock=clock)
    first, second = simple_order(sim, "t1"), simple_order(sim, "t2")
    slow = sim.create_credit_memo(first, visible=False)
    clock.advance(30)
    fast = sim.create_credit_memo(second)
    assert slow < fast
    query = criteria([("entity_id", "0", "gt")], sort=[("entity_id", "ASC")])
    _, body = call(sim, "GET", "/rest/V1/creditmemos", query=query)
    assert [m["entity_id"] for m in body["items"]] == [fast]
    assert call(sim, "GET", f"/rest/V1/creditmemo/{slow}")[0] == 404
    assert "total_refunded" not in sim.order(first)
    assert sim.commit_pending() == [slow]
    _, body = call(sim, "GET", "/rest/V1/creditmemos", query=query)
    assert [m["entity_id"] for m in body["items"]] == [slow, fast]
    assert body["items"][0]["created_at"] < body["items"][1]["created_at"]
    assert sim.order(first)["state"] == "closed"


def test_get_missing_entities_are_404_but_comment_lists_are_empty() -> None:
    """Unknown orders and memos are 404s; their comment lists are just empty."""
    sim = new_sim()
    missing = (
        "The entity that was requested doesn't exist. Verify the entity and try again."
    )
    assert call(sim, "GET", "/rest/V1/orders/7") == (404, {"message": missing})
    assert call(sim, "GET", "/rest/V1/creditmemo/7") == (404, {"message": missing})
    assert call(sim, "GET", "/rest/V1/orders/7/comments")[1]["items"] == []
