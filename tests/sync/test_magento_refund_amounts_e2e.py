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
