"""Direction B end to end on Magento stores that price refunds their own way.

Shipping: Magento reads ``arguments.shipping_amount`` in base currency, incl. tax when
the store displays shipping incl. tax; a whole-order refund leaves it out so Magento
refunds what is left, tax included (reference §5).
"""

from __future__ import annotations

import pytest

from .conftest import Harness


@pytest.mark.parametrize("base_to_order_rate", [1.25, 1.0])
def test_whole_cancel_refunds_all_shipping_with_its_tax_in_the_store_currency(
    harness: Harness, base_to_order_rate: float
) -> None:
    """A store showing shipping incl. tax (EUR base, USD orders) refunds it all, once."""
    magento = harness.sb.magento
    magento.display_sales_shipping_incl_tax = True
    magento.set_base_currency("EUR", base_to_order_rate)
    harness.sb.add_store("us-main")
    placed = harness.sb.place_order(
        [{"sku": "A", "qty": 2, "price": 10.0}], shipping_fee=12.5, shipping_tax=2.5
    )
    harness.sb.tiktok.buyer_cancel(placed.tiktok_order_id)

    rc, _ = harness.run("run", "--once")

    assert rc == 0
    memos = harness.memos(placed.magento_entity_id)
    assert len(memos) == 1
    assert (memos[0]["shipping_amount"], memos[0]["shipping_tax_amount"]) == (12.5, 2.5)
    assert memos[0]["grand_total"] == 35
    order = magento.order(placed.magento_entity_id)
    assert order["total_refunded"] == order["total_paid"] == 35
    assert order["state"] == "closed"


def _kit(price_type: str, qty: int = 2) -> dict[str, object]:
    """A bundle KIT of 1 x KIT-A (10.00) and 2 x KIT-B (5.00); 20.00 either way."""
    return {
        "sku": "KIT",
        "qty": qty,
        "price": 20.0,
        "product_type": "bundle",
        "bundle_price_type": price_type,
        "bundle_items": [
            {"sku": "KIT-A", "qty": 1, "price": 10.0},
            {"sku": "KIT-B", "qty": 2, "price": 5.0},
        ],
    }


@pytest.mark.parametrize("price_type", ["fixed", "dynamic"])
def test_whole_cancel_of_a_bundle_refunds_it_and_restocks_its_children(
    harness: Harness, price_type: str
) -> None:
    """Fixed bundles are refunded on the parent, dynamic ones through their children."""
    harness.sb.add_store("us-main", restock=True)
    placed = harness.sb.place_order([_kit(price_type)], shipping_fee=5.0)
    stock = {sku: harness.sb.magento.stock(sku) for sku in ("KIT-A", "KIT-B")}
    harness.sb.tiktok.buyer_cancel(placed.tiktok_order_id)

    rc, _ = harness.run("run", "--once")

    assert rc == 0
    memos = harness.memos(placed.magento_entity_id)
    assert len(memos) == 1
    assert memos[0]["grand_total"] == 45
    order = harness.sb.magento.order(placed.magento_entity_id)
    assert order["state"] == "closed"
    children = {i["sku"]: i for i in order["items"] if "parent_item_id" in i}
    assert [children[s]["qty_refunded"] for s in ("KIT-A", "KIT-B")] == [2, 4]
    assert harness.sb.magento.stock("KIT-A") == stock["KIT-A"] + 2
    assert harness.sb.magento.stock("KIT-B") == stock["KIT-B"] + 4


def test_one_dynamic_bundle_cancelled_refunds_its_children_share(
    harness: Harness,
) -> None:
    """One of two dynamic bundles: each child refunded by its qty per bundle, no shipping."""
    harness.sb.add_store("us-main")
    placed = harness.sb.place_order([_kit("dynamic")], shipping_fee=5.0)
    lines = harness.sb.tiktok.order(placed.tiktok_order_id)["line_items"]
    harness.sb.tiktok.partial_cancel(placed.tiktok_order_id, [lines[0]["id"]])

    rc, _ = harness.run("run", "--once")

    assert rc == 0
    memos = harness.memos(placed.magento_entity_id)
    assert len(memos) == 1
    assert (memos[0]["grand_total"], memos[0]["shipping_amount"]) == (20, 0)
    order = harness.sb.magento.order(placed.magento_entity_id)
    children = {i["sku"]: i for i in order["items"] if "parent_item_id" in i}
    assert [children[s]["qty_refunded"] for s in ("KIT-A", "KIT-B")] == [1, 2]
    assert order["state"] == "processing"
