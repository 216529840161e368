"""Orders as a TikTok Shop importer module creates them in Magento.

Imported orders are invoiced and paid by default (``processing``), because an order
without a paid invoice cannot be refunded at all. A configurable product becomes the
two rows Magento stores: the configurable parent (price, refund qty) and its simple
child with ``parent_item_id``, both carrying the child's SKU.

A bundle becomes its parent row (``product_type`` "bundle", the bundle's SKU) and one
simple child row per selection, ``qty_ordered`` = selection qty x bundles. Where the
price sits tells the two price types apart in the REST order, and is what cancelsync
relies on (``product_options.product_calculations`` is not in the REST item):

- fixed price (``product_calculations`` 1): the parent carries the price, the
  children carry 0 and are dummies (refunded through the parent, like a
  configurable);
- dynamic price (0): every child carries its own price and is refunded by its own
  qty; the parent is a dummy that also shows the bundle's total (the children's sum).

The row shapes follow Magento 1-era sample order items (``product_calculations``
0/1, children priced 0 under a fixed-price parent); that 2.4 REST shows the same
prices is an assumption (**UNCONFIRMED** live).

Amounts are given in the order currency (TikTok's). The store's base currency and
``base_to_order_rate`` (simulator settings) are stamped on each order; shipping may
carry tax (``shipping_tax_amount``), which is part of the grand total and invoiced.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cancelsync.sandbox.magento.errors import money
from cancelsync.sandbox.magento.models import STOCK_TYPES, OrderItem
from cancelsync.sandbox.magento.order import Order
from cancelsync.sandbox.magento.state import MagentoState

PRODUCT_TYPES = ("simple", "virtual", "configurable", "bundle")
BUNDLE_PRICE_TYPES = ("fixed", "dynamic")


@dataclass(frozen=True)
class BundleItem:
    """One selection of a bundle: a simple SKU, its qty per bundle and unit price.

    ``price`` counts only in a dynamic-price bundle.
    """

    sku: str
    qty: float = 1.0
    price: float = 0.0


@dataclass(frozen=True)
class OrderLine:
    """One line of an imported TikTok order.

    ``product_type="configurable"`` creates Magento's two rows: the configurable parent
    (price, refund qty) and its simple child (``parent_item_id``), both with ``sku``.
    ``product_type="bundle"`` needs ``bundle_price_type`` ("fixed": ``price`` is the
    bundle's; "dynamic": the selections' prices make it, ``price`` is ignored) and
    ``bundle_items`` (``BundleItem``s or mappings with the same keys).
    """

    sku: str
    qty: float
    price: float
    product_type: str = "simple"
    name: str | None = None
    parent_sku: str | None = None  # the configurable product's own SKU
    bundle_price_type: str | None = None
    bundle_items: Sequence[BundleItem | Mapping[str, Any]] = ()

    def selections(self) -> list[BundleItem]:
        return [
            b if isinstance(b, BundleItem) else BundleItem(**b)
            for b in self.bundle_items
        ]


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
        items.extend(_rows(state, line, order_id, store_id, stamp))
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


def _rows(
    state: MagentoState, line: OrderLine, order_id: int, store_id: int, stamp: str
) -> list[OrderItem]:
    """The ``sales_order_item`` rows of one line: a parent and its children, if any."""

    def row(
        sku: str, product_type: str, qty: float, price: float, **kw: Any
    ) -> OrderItem:
        return OrderItem(
            item_id=state.next_id("order_item"),
            order_id=order_id,
            store_id=store_id,
            product_id=state.product_id(kw.pop("product_key", sku)),
            sku=sku,
            name=kw.pop("name", None) or line.name or f"Product {sku}",
            product_type=product_type,
            qty_ordered=float(qty),
            price=money(price),
            created_at=stamp,
            updated_at=stamp,
            **kw,
        )

    qty = float(line.qty)
    if line.product_type == "configurable":
        parent = row(
            line.sku, "configurable", qty, line.price,
            product_key=line.parent_sku or f"{line.sku}-parent",
        )  # fmt: skip
        return [
            parent,
            row(line.sku, "simple", qty, 0.0, parent_item_id=parent.item_id),
        ]
    if line.product_type != "bundle":
        return [row(line.sku, line.product_type, qty, line.price)]
    selections = line.selections()
    if line.bundle_price_type not in BUNDLE_PRICE_TYPES or not selections:
        raise ValueError(f"a bundle needs a price type and items: {line!r}")
    dynamic = line.bundle_price_type == "dynamic"
    # A dynamic bundle's parent shows the total of its selections (not totalled).
    total = sum(money(b.price * b.qty) for b in selections)
    parent = row(
        line.sku, "bundle", qty, total if dynamic else line.price,
        children_calculated=dynamic,
    )  # fmt: skip
    children = [
        row(
            b.sku,
            "simple",
            b.qty * qty,
            b.price if dynamic else 0.0,
            name=f"Product {b.sku}",
            parent_item_id=parent.item_id,
            children_calculated=dynamic,
            qty_per_parent=float(b.qty),
        )
        for b in selections
    ]
    return [parent, *children]
