"""The ``sales_order`` entity: columns, REST shape and the state rules of Order.php.

The rules (``can_creditmemo``, ``can_cancel``, ``can_ship``, ``resolve_state``) follow
``Magento\\Sales\\Model\\Order`` and ``Order\\StateResolver`` closely, since the
worker's decisions depend on them.

Shipping may carry tax (``shipping_tax_amount``; ``shipping_incl_tax`` is shipping plus
its tax), and the base currency may differ from the order currency
(``base_to_order_rate``; ``base_of()`` gives an amount's base twin). Items carry no tax
in the simulator, so the order's tax is its shipping tax.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cancelsync.sandbox.magento.errors import money
from cancelsync.sandbox.magento.models import (
    Comment,
    OrderItem,
    drop_nulls,
    to_base,
    twins,
)


@dataclass
class Order:
    """A ``sales_order`` row with its items and status history."""

    entity_id: int
    increment_id: str
    store_id: int
    state: str
    status: str
    created_at: str
    updated_at: str
    currency: str
    items: list[OrderItem]
    subtotal: float
    shipping_amount: float
    grand_total: float
    payment_method: str
    customer_email: str
    customer_firstname: str
    customer_lastname: str
    extra_columns: dict[str, Any] = field(default_factory=dict)  # ext_order_id & co.
    total_invoiced: float | None = None
    total_paid: float | None = None
    subtotal_invoiced: float | None = None
    shipping_invoiced: float | None = None
    total_refunded: float | None = None
    total_offline_refunded: float | None = None
    subtotal_refunded: float | None = None
    shipping_refunded: float | None = None
    adjustment_positive: float | None = None
    adjustment_negative: float | None = None
    total_canceled: float | None = None
    subtotal_canceled: float | None = None
    shipping_canceled: float | None = None
    hold_before_state: str | None = None
    hold_before_status: str | None = None
    status_histories: list[Comment] = field(default_factory=list)
    base_currency: str = ""  # empty: the order currency
    base_to_order_rate: float = 1.0  # order amount = base amount x rate
    shipping_tax_amount: float = 0.0
    shipping_tax_refunded: float | None = None
    tax_invoiced: float | None = None
    tax_refunded: float | None = None
    tax_canceled: float | None = None
    base: dict[str, float] = field(default_factory=dict)  # booked base twins

    @property
    def shipping_incl_tax(self) -> float:
        return money(self.shipping_amount + self.shipping_tax_amount)

    def base_of(self, name: str) -> float | None:
        """The base-currency twin of the amount ``name`` (booked, or converted)."""
        if name in self.base:
            return self.base[name]
        if name == "shipping_incl_tax":
            ship = self.base_of("shipping_amount") or 0.0
            return money(ship + (self.base_of("shipping_tax_amount") or 0.0))
        value = getattr(self, name)
        return to_base(value, self.base_to_order_rate)

    # --------------------------------------------------------------- Magento rules
    @property
    def is_virtual(self) -> bool:
        return all(i.product_type == "virtual" for i in self.items)

    def item(self, item_id: int) -> OrderItem | None:
        return next((i for i in self.items if i.item_id == item_id), None)

    def parent_of(self, item: OrderItem) -> OrderItem | None:
        return None if item.parent_item_id is None else self.item(item.parent_item_id)

    def children_of(self, item: OrderItem) -> list[OrderItem]:
        return [i for i in self.items if i.parent_item_id == item.item_id]

    def can_creditmemo(self) -> bool:
        """Order::canCreditmemo(): not on hold/review/canceled/closed and money left."""
        if self.state in ("holded", "payment_review", "canceled", "closed"):
            return False
        left = money(self.total_paid or 0.0) - (self.total_refunded or 0.0)
        return abs(left) >= 0.0001

    def can_invoice(self) -> bool:
        if self.state in ("holded", "payment_review", "canceled", "complete", "closed"):
            return False
        return any(i.qty_to_invoice > 0 for i in self.items)

    def can_ship(self) -> bool:
        if self.state in ("holded", "payment_review", "canceled") or self.is_virtual:
            return False
        return any(
            i.qty_to_ship > 0
            and i.product_type != "virtual"
            and i.qty_refunded != i.qty_ordered
            for i in self.items
        )

    def can_cancel(self) -> bool:
        """Order::canCancel(): false on hold/review, when fully invoiced or finished."""
        if self.state in ("holded", "payment_review", "canceled"):
            return False
        if all(i.qty_to_invoice <= 0 for i in self.items):
            return False
        return self.state not in ("complete", "closed")

    def resolve_state(self) -> str:
        """Sales StateResolver::getStateForOrder() with no arguments."""
        state = "processing" if self.state == "processing" else "new"
        finished = not (self.can_invoice() or self.can_ship())
        if self.state not in ("canceled", "holded") and finished:
            if self.grand_total == 0 or self.can_creditmemo():
                state = "complete"
            elif self.total_refunded:
                state = "closed"
        return state

    # ---------------------------------------------------------------- rendering
    def row(self) -> dict[str, Any]:
        """The flat sales_order row (every column, NULLs included)."""
        total_due = max(money(self.grand_total - (self.total_paid or 0.0)), 0.0)
        data: dict[str, Any] = {
            "adjustment_negative": self.adjustment_negative,
            "adjustment_positive": self.adjustment_positive,
            "base_currency_code": self.base_currency or self.currency,
            "base_to_global_rate": 1.0,
            "base_to_order_rate": self.base_to_order_rate,
            "created_at": self.created_at,
            "customer_email": self.customer_email,
            "customer_firstname": self.customer_firstname,
            "customer_is_guest": 1,
            "customer_lastname": self.customer_lastname,
            "discount_amount": 0.0,
            "entity_id": self.entity_id,
            "ext_order_id": None,
            "global_currency_code": self.base_currency or self.currency,
            "grand_total": self.grand_total,
            "increment_id": self.increment_id,
            "is_virtual": 1 if self.is_virtual else 0,
            "order_currency_code": self.currency,
            "shipping_amount": self.shipping_amount,
            "shipping_canceled": self.shipping_canceled,
            "shipping_description": "TikTok Shop - Standard",
            "shipping_incl_tax": self.shipping_incl_tax,
            "shipping_invoiced": self.shipping_invoiced,
            "shipping_refunded": self.shipping_refunded,
            "shipping_tax_amount": self.shipping_tax_amount,
            "shipping_tax_refunded": self.shipping_tax_refunded,
            "state": self.state,
            "status": self.status,
            "store_currency_code": self.base_currency or self.currency,
            "store_id": self.store_id,
            "store_to_base_rate": 0.0,
            "store_to_order_rate": 0.0,
            "subtotal": self.subtotal,
            "subtotal_canceled": self.subtotal_canceled,
            "subtotal_incl_tax": self.subtotal,
            "subtotal_invoiced": self.subtotal_invoiced,
            "subtotal_refunded": self.subtotal_refunded,
            "tax_amount": self.shipping_tax_amount,
            "tax_canceled": self.tax_canceled,
            "tax_invoiced": self.tax_invoiced,
            "tax_refunded": self.tax_refunded,
            "total_canceled": self.total_canceled,
            "total_due": total_due,
            "total_invoiced": self.total_invoiced,
            "total_item_count": sum(1 for i in self.items if not i.is_dummy),
            "total_offline_refunded": self.total_offline_refunded,
            "total_paid": self.total_paid,
            "total_qty_ordered": sum(
                i.qty_ordered for i in self.items if not i.is_dummy
            ),
            "total_refunded": self.total_refunded,
            "updated_at": self.updated_at,
            "weight": 0.0,
        }
        booked = dict(self.base)
        booked["shipping_incl_tax"] = self.base_of("shipping_incl_tax") or 0.0
        booked.setdefault("tax_amount", self.base_of("shipping_tax_amount") or 0.0)
        kw: dict[str, Any] = {"rate": self.base_to_order_rate, "booked": booked}
        twins(
            data, "adjustment_negative", "adjustment_positive", "discount_amount", **kw
        )
        twins(data, "grand_total", "shipping_amount", "shipping_canceled", **kw)
        twins(data, "shipping_incl_tax", "shipping_invoiced", "shipping_refunded", **kw)
        twins(data, "shipping_tax_amount", "shipping_tax_refunded", **kw)
        twins(data, "subtotal", "subtotal_canceled", "subtotal_incl_tax", **kw)
        twins(data, "subtotal_invoiced", "subtotal_refunded", "tax_amount", **kw)
        twins(data, "tax_canceled", "tax_invoiced", "tax_refunded", **kw)
        twins(data, "total_canceled", "total_due", "total_invoiced", **kw)
        twins(data, "total_offline_refunded", "total_paid", "total_refunded", **kw)
        data.update(self.extra_columns)
        return data

    def to_json(self) -> dict[str, Any]:
        data = drop_nulls(self.row())
        data["items"] = [i.to_json(self.parent_of(i)) for i in self.items]
        data["billing_address"] = {
            "address_type": "billing",
            "city": "Los Angeles",
            "country_id": "US",
            "email": self.customer_email,
            "entity_id": self.entity_id,
            "firstname": self.customer_firstname,
            "lastname": self.customer_lastname,
            "parent_id": self.entity_id,
            "postcode": "90001",
            "street": ["1 Sandbox Way"],
            "telephone": "5550100",
        }
        data["payment"] = drop_nulls(
            {
                "account_status": None,
                "additional_information": [self.payment_method],
                "amount_ordered": self.grand_total,
                "amount_paid": self.total_paid,
                "amount_refunded": self.total_refunded,
                "base_amount_ordered": self.base_of("grand_total"),
                "base_amount_paid": self.base_of("total_paid"),
                "base_amount_refunded": self.base_of("total_refunded"),
                "base_shipping_amount": self.base_of("shipping_amount"),
                "entity_id": self.entity_id,
                "method": self.payment_method,
                "parent_id": self.entity_id,
                "shipping_amount": self.shipping_amount,
            }
        )
        # Newest first, like Order::getStatusHistoryCollection().
        ordered = sorted(
            self.status_histories,
            key=lambda c: (c.created_at, c.entity_id),
            reverse=True,
        )
        data["status_histories"] = [c.to_json() for c in ordered]
        data["extension_attributes"] = {
            "shipping_assignments": [
                {"shipping": {"method": "tiktokshop_standard"}, "items": data["items"]}
            ],
            "payment_additional_info": [],
        }
        return data
