"""Orders as a TikTok Shop importer module creates them in Magento.

Imported orders are invoiced and paid by default (``processing``), because an order
without a paid invoice cannot be refunded at all. A configurable product becomes the
two rows Magento stores: the configurable parent (price, refund qty) and its simple
child with ``parent_item_id``, both carrying the child's SKU.

Amounts are given in the order currency (TikTok's). The store's base currency and
``base_to_order_rate`` (simulator settings) are stamped on each order; shipping may
carry tax (``shipping_tax_amount``), which is part of the grand total and invoiced.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from cancelsync.sandbox.magento.errors import money
from cancelsync.sandbox.magento.models import STOCK_TYPES, OrderItem
from cancelsync.sandbox.magento.order import Order
from cancelsync.sandbox.magento.state import MagentoState

PRODUCT_TYPES = ("simple", "virtual", "configurable")


@dataclass(frozen=True)
class OrderLine:
    """One line of an imported TikTok order.

    ``product_type="configurable"`` creates Magento's two rows: the configurable parent
    (price, refund qty) and its simple child (``parent_item_id``), both with ``sku``.
    """

    sku: str
    qty: float
    price: float
    product_type: str = "simple"
    name: str | None = None
    parent_sku: str | None = None  # the configurable product's own SKU


def import_order(
    state: MagentoState,
    tiktok_order_id: str,
    lines: list[OrderLine],
    *,
    shipping_amount: float,
    shipping_tax_amount: float = 0.0,
    store_id: int,
    invoiced: bool,
    order_id_field: str,
    created_at: datetime | None,
    customer_email: str,
    payment_method: str,
) -> int:
    """Create an order as a TikTok importer would (invoiced and paid by default)."""
    if not lines:
        raise ValueError("an order needs at least one line")
    stamp = (
        created_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
        if created_at is not None
        else state.now()
    )
    order_id = state.next_id("order")
    items: list[OrderItem] = []
    for line in lines:
        if line.product_type not in PRODUCT_TYPES or line.qty <= 0:
            raise ValueError(f"unsupported order line {line!r}")
        name = line.name or f"Product {line.sku}"
        row = OrderItem(
            item_id=state.next_id("order_item"),
            order_id=order_id,
            store_id=store_id,
            product_id=state.product_id(
                line.parent_sku or f"{line.sku}-parent"
                if line.product_type == "configurable"
                else line.sku
            ),
            sku=line.sku,
            name=name,
            product_type=line.product_type,
            qty_ordered=float(line.qty),
            price=money(line.price),
            created_at=stamp,
            updated_at=stamp,
        )
        items.append(row)
        if line.product_type == "configurable":
            items.append(
                OrderItem(
                    item_id=state.next_id("order_item"),
                    order_id=order_id,
                    store_id=store_id,
                    product_id=state.product_id(line.sku),
                    sku=line.sku,
                    name=name,
                    product_type="simple",
                    qty_ordered=float(line.qty),
                    price=0.0,
                    created_at=stamp,
                    updated_at=stamp,
                    parent_item_id=row.item_id,
                )
            )
    rate = state.base_to_order_rate
    for item in items:
        item.base_to_order_rate = rate
    subtotal = money(sum(i.row_total for i in items if not i.is_dummy))
    shipping = money(shipping_amount)
    shipping_tax = money(shipping_tax_amount)
    grand_total = money(subtotal + shipping + shipping_tax)
    order = Order(
        entity_id=order_id,
        increment_id=state.increment_id("order", store_id),
        store_id=store_id,
        state="new",
        status="pending",
        created_at=stamp,
        updated_at=stamp,
        currency=state.currency,
        items=items,
        subtotal=subtotal,
        shipping_amount=shipping,
        grand_total=grand_total,
        payment_method=payment_method,
        customer_email=customer_email,
        customer_firstname="TikTok",
        customer_lastname="Buyer",
        extra_columns={order_id_field: tiktok_order_id},
        base_currency=state.base_currency,
        base_to_order_rate=rate,
        shipping_tax_amount=shipping_tax,
    )
    base_items = sum(
        money(i.base_price * i.qty_ordered) for i in items if not i.is_dummy
    )
    order.base["subtotal"] = money(base_items)
    order.base["grand_total"] = money(
        base_items
        + (order.base_of("shipping_amount") or 0.0)
        + (order.base_of("shipping_tax_amount") or 0.0)
    )
    if invoiced:
        for item in items:
            item.qty_invoiced = item.qty_ordered
        order.total_invoiced = order.total_paid = grand_total
        order.subtotal_invoiced = subtotal
        order.shipping_invoiced = shipping
        order.tax_invoiced = shipping_tax
        for name in ("total_invoiced", "total_paid"):
            order.base[name] = order.base["grand_total"]
        order.base["subtotal_invoiced"] = order.base["subtotal"]
        order.state, order.status = "processing", "processing"
    for item in items:
        if item.product_type in STOCK_TYPES:
            state.add_stock(item.sku, -item.qty_ordered)
    state.extra_order_columns.add(order_id_field)
    state.orders[order_id] = order
    state.items.update({i.item_id: i for i in items})
    return order_id
