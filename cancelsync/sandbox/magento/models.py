"""In-memory rows of the simulated Magento store: order items, credit memos, comments.

Each entity keeps Magento's columns with their Magento names. ``row()`` is the flat
``sales_*`` table row (what searchCriteria filters and sorts on, NULLs included) and
``to_json()`` is the REST representation, which omits NULL values the way Magento's
DataObjectProcessor does and nests items, payment and comments.

Every amount has its ``base_*`` twin in the store's base currency. The base currency
may differ from the order currency (a simulator setting): a twin is then either the
base amount booked when it was computed (refunds book both) or the order amount at the
order's ``base_to_order_rate`` (``order = base x rate``), rounded per amount.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cancelsync.sandbox.magento.errors import money

DEFAULT_STATUS = {
    "new": "pending",
    "pending_payment": "pending_payment",
    "processing": "processing",
    "complete": "complete",
    "closed": "closed",
    "canceled": "canceled",
    "holded": "holded",
    "payment_review": "payment_review",
}
STATE_STATUSES = {
    "new": ("pending",),
    "pending_payment": ("pending_payment",),
    "processing": ("processing", "fraud"),
    "complete": ("complete",),
    "closed": ("closed",),
    "canceled": ("canceled",),
    "holded": ("holded",),
    "payment_review": ("payment_review", "fraud"),
}
# The source-managed types (MSI), i.e. the qty-holding types (legacy CatalogInventory).
STOCK_TYPES = ("simple", "virtual")


def drop_nulls(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v is not None}


def to_base(amount: float | None, rate: float) -> float | None:
    """An order-currency amount in base currency (``order = base x rate``)."""
    return None if amount is None else money(amount / rate)


def twins(
    data: dict[str, Any],
    *names: str,
    rate: float = 1.0,
    booked: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """Add ``base_*`` twins: the booked base amount, else the amount at ``rate``."""
    for name in names:
        if booked is not None and name in booked:
            data[f"base_{name}"] = booked[name]
        else:
            data[f"base_{name}"] = to_base(data.get(name), rate)
    return data


@dataclass
class Comment:
    """A credit memo comment or an order status history entry."""

    entity_id: int
    parent_id: int
    comment: str | None
    created_at: str
    is_customer_notified: int | None = 0
    is_visible_on_front: int = 0
    status: str | None = None  # order history only
    entity_name: str | None = None  # order history only ("order", "creditmemo", ...)

    def to_json(self) -> dict[str, Any]:
        return drop_nulls(
            {
                "comment": self.comment,
                "created_at": self.created_at,
                "entity_id": self.entity_id,
                "entity_name": self.entity_name,
                "is_customer_notified": self.is_customer_notified,
                "is_visible_on_front": self.is_visible_on_front,
                "parent_id": self.parent_id,
                "status": self.status,
            }
        )


@dataclass
class OrderItem:
    """A ``sales_order_item`` row; a configurable or bundle child has ``parent_item_id``.

    ``children_calculated`` is ``Order\\Item::isChildrenCalculated()``: the row belongs
    to a dynamic-price bundle (``product_options.product_calculations`` = 0, set on the
    parent and read by its children). That option is not part of the REST item, so it
    is not rendered; what the REST shows is where the price sits (see ``importer``).
    ``qty_per_parent`` is a bundle selection's qty per bundle
    (``bundle_selection_attributes.qty``); 1 for a configurable child.
    """

    item_id: int
    order_id: int
    store_id: int
    product_id: int
    sku: str
    name: str
    product_type: str
    qty_ordered: float
    price: float
    created_at: str
    parent_item_id: int | None = None
    qty_invoiced: float = 0.0
    qty_shipped: float = 0.0
    qty_refunded: float = 0.0
    qty_canceled: float = 0.0
    amount_refunded: float = 0.0
    updated_at: str = ""
    base_to_order_rate: float = 1.0
    base_amount_refunded: float = 0.0
    children_calculated: bool = False
    qty_per_parent: float = 1.0

    @property
    def is_dummy(self) -> bool:
        """``Order\\Item::isDummy()``: a row whose qty and money live on another row.

        A configurable or fixed-price bundle child (the parent holds them), or a
        dynamic-price bundle parent (its children hold them).
        """
        if self.parent_item_id is not None:
            return not self.children_calculated
        return self.product_type == "bundle" and self.children_calculated

    @property
    def row_total(self) -> float:
        return money(self.price * self.qty_ordered)

    @property
    def row_invoiced(self) -> float:
        return money(self.price * self.qty_invoiced)

    @property
    def base_price(self) -> float:
        return money(self.price / self.base_to_order_rate)

    @property
    def base_row_invoiced(self) -> float:
        return money(self.base_price * self.qty_invoiced)

    @property
    def qty_to_refund(self) -> float:
        if self.is_dummy:
            return 0.0
        return max(self.qty_invoiced - self.qty_refunded, 0.0)

    @property
    def qty_to_invoice(self) -> float:
        if self.is_dummy:
            return 0.0
        return max(self.qty_ordered - self.qty_invoiced - self.qty_canceled, 0.0)

    @property
    def qty_to_ship(self) -> float:
        if self.is_dummy:
            return 0.0
        left = (
            self.qty_ordered - self.qty_shipped - self.qty_refunded - self.qty_canceled
        )
        return max(left, 0.0)

    @property
    def qty_to_cancel(self) -> float:
        return max(min(self.qty_to_invoice, self.qty_to_ship), 0.0)

    def to_json(self, parent: OrderItem | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "amount_refunded": self.amount_refunded,
            "created_at": self.created_at,
            "discount_amount": 0.0,
            "is_qty_decimal": 0,
            "is_virtual": 1 if self.product_type == "virtual" else 0,
            "item_id": self.item_id,
            "name": self.name,
            "order_id": self.order_id,
            "original_price": self.price,
            "parent_item_id": self.parent_item_id,
            "price": self.price,
            "price_incl_tax": self.price,
            "product_id": self.product_id,
            "product_type": self.product_type,
            "qty_canceled": self.qty_canceled,
            "qty_invoiced": self.qty_invoiced,
            "qty_ordered": self.qty_ordered,
            "qty_refunded": self.qty_refunded,
            "qty_shipped": self.qty_shipped,
            "row_invoiced": self.row_invoiced,
            "row_total": self.row_total,
            "row_total_incl_tax": self.row_total,
            "sku": self.sku,
            "store_id": self.store_id,
            "tax_amount": 0.0,
            "updated_at": self.updated_at,
        }
        rate = self.base_to_order_rate
        booked = {
            "amount_refunded": self.base_amount_refunded,
            "price": self.base_price,
            "original_price": self.base_price,
            "price_incl_tax": self.base_price,
            "row_invoiced": self.base_row_invoiced,
            "row_total": money(self.base_price * self.qty_ordered),
            "row_total_incl_tax": money(self.base_price * self.qty_ordered),
        }
        twins(data, "amount_refunded", "discount_amount", "original_price", "price",
              rate=rate, booked=booked)  # fmt: skip
        twins(data, "price_incl_tax", "row_invoiced", "row_total", "tax_amount",
              rate=rate, booked=booked)  # fmt: skip
        twins(data, "row_total_incl_tax", rate=rate, booked=booked)
        if parent is not None:
            data["parent_item"] = parent.to_json()
        return drop_nulls(data)


@dataclass
class MemoItem:
    """A ``sales_creditmemo_item`` row; ``parent_id`` is the memo, not an order item."""

    entity_id: int
    parent_id: int
    order_item_id: int
    product_id: int
    sku: str
    name: str
    qty: float
    price: float
    row_total: float | None  # configurable children are not totalled
    base_price: float | None = None  # None: the same as ``price``
    base_row_total: float | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "discount_amount": 0.0,
            "entity_id": self.entity_id,
            "name": self.name,
            "order_item_id": self.order_item_id,
            "parent_id": self.parent_id,
            "price": self.price,
            "price_incl_tax": self.price,
            "product_id": self.product_id,
            "qty": self.qty,
            "row_total": self.row_total,
            "row_total_incl_tax": self.row_total,
            "sku": self.sku,
            "tax_amount": 0.0,
        }
        base_price = self.price if self.base_price is None else self.base_price
        base_row = (
            self.row_total if self.base_row_total is None else self.base_row_total
        )
        booked = {"price": base_price, "price_incl_tax": base_price}
        if base_row is not None:
            booked.update(row_total=base_row, row_total_incl_tax=base_row)
        twins(data, "discount_amount", "price", "price_incl_tax", "row_total",
              booked=booked)  # fmt: skip
        twins(data, "row_total_incl_tax", "tax_amount", booked=booked)
        return drop_nulls(data)


@dataclass
class CreditMemo:
    """A ``sales_creditmemo`` row with its items and comments."""

    entity_id: int
    increment_id: str
    order_id: int
    store_id: int
    created_at: str
    updated_at: str
    currency: str
    subtotal: float
    shipping_amount: float
    adjustment_positive: float
    adjustment_negative: float
    grand_total: float
    items: list[MemoItem] = field(default_factory=list)
    comments: list[Comment] = field(default_factory=list)
    state: int = 2  # 1 open, 2 refunded (offline refunds), 3 canceled
    customer_note: str | None = None
    customer_note_notify: int | None = None
    email_sent: int | None = None
    base_currency: str = ""  # empty: the order currency
    base_to_order_rate: float = 1.0
    shipping_incl_tax: float | None = None  # None: no shipping tax
    shipping_tax_amount: float = 0.0
    tax_amount: float = 0.0
    base: dict[str, float] = field(default_factory=dict)  # booked base twins

    def row(self) -> dict[str, Any]:
        """The flat sales_creditmemo row (every column, NULLs included)."""
        data: dict[str, Any] = {
            "adjustment": money(self.adjustment_positive - self.adjustment_negative),
            "adjustment_negative": self.adjustment_negative,
            "adjustment_positive": self.adjustment_positive,
            "base_currency_code": self.base_currency or self.currency,
            "base_to_global_rate": 1.0,
            "base_to_order_rate": self.base_to_order_rate,
            "billing_address_id": self.order_id,
            "created_at": self.created_at,
            "creditmemo_status": None,
            "customer_note": self.customer_note,
            "customer_note_notify": self.customer_note_notify,
            "discount_amount": 0.0,
            "email_sent": self.email_sent,
            "entity_id": self.entity_id,
            "global_currency_code": self.base_currency or self.currency,
            "grand_total": self.grand_total,
            "increment_id": self.increment_id,
            "invoice_id": None,
            "order_currency_code": self.currency,
            "order_id": self.order_id,
            "shipping_amount": self.shipping_amount,
            "shipping_incl_tax": self.shipping_amount
            if self.shipping_incl_tax is None
            else self.shipping_incl_tax,
            "shipping_tax_amount": self.shipping_tax_amount,
            "state": self.state,
            "store_currency_code": self.base_currency or self.currency,
            "store_id": self.store_id,
            "store_to_base_rate": 0.0,
            "store_to_order_rate": 0.0,
            "subtotal": self.subtotal,
            "subtotal_incl_tax": self.subtotal,
            "tax_amount": self.tax_amount,
            "updated_at": self.updated_at,
        }
        booked = dict(self.base)
        if "adjustment_positive" in booked or "adjustment_negative" in booked:
            booked["adjustment"] = money(
                booked.get("adjustment_positive", 0.0)
                - booked.get("adjustment_negative", 0.0)
            )
        if "subtotal" in booked:
            booked.setdefault("subtotal_incl_tax", booked["subtotal"])
        if "shipping_amount" in booked:
            booked.setdefault("shipping_incl_tax", booked["shipping_amount"])
        kw: dict[str, Any] = {"rate": self.base_to_order_rate, "booked": booked}
        twins(data, "adjustment", "adjustment_negative", "adjustment_positive", **kw)
        twins(data, "discount_amount", "grand_total", "shipping_amount", **kw)
        twins(data, "shipping_incl_tax", "shipping_tax_amount", "subtotal", **kw)
        twins(data, "subtotal_incl_tax", "tax_amount", **kw)
        return data

    def to_json(self) -> dict[str, Any]:
        data = drop_nulls(self.row())
        # Memos made by the order refund carry no invoice; kept visible as null.
        data["invoice_id"] = None
        data["items"] = [i.to_json() for i in self.items]
        data["comments"] = [c.to_json() for c in self.comments]
        data["extension_attributes"] = []  # PHP serialises an empty object as []
        return data
