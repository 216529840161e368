"""The credit memo's shipping and tax totals, as Magento's total collectors compute them.

``collect_shipping`` follows ``Sales/Model/Order/Creditmemo/Total/Shipping.php`` and
``collect_tax`` the order branch (no invoice on the memo, as with
``POST order/{id}/refund``) of ``Creditmemo/Total/Tax.php`` (magento/magento2):

- ``arguments.shipping_amount`` left out: all remaining shipping is refunded, in both
  currencies, and the Tax collector adds all remaining shipping tax;
- given: it is read in the **base** currency, **including tax** when the store
  displays shipping incl. tax in sales documents
  (``Tax\\Model\\Config::displaySalesShippingInclTax``, a simulator setting), excluding
  it otherwise. A value at the maximum refunds what is left; below it, it is a ratio of
  the order's whole shipping (and the Tax collector takes the same part of the shipping
  tax); above it, ``Maximum shipping amount allowed to refund is: %1`` with the maximum
  formatted in the base currency (``Currency::format($x, null, false)``).

Base amounts are the order amounts at the order's ``base_to_order_rate``. Items carry
no tax in the simulator, so the memo's tax is its shipping tax (plus whatever tax is
left when the memo is the last one).
"""

from __future__ import annotations

from dataclasses import dataclass

from cancelsync.sandbox.magento.errors import CM_SHIPPING_MAX, bad_request, money
from cancelsync.sandbox.magento.order import Order

CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}
_EPSILON = 0.0001  # Magento's float comparisons: (x < y + 0.0001) means x <= y


def format_price(amount: float, currency: str) -> str:
    """``Currency::format($x, null, false)``: ``$1,234.50``."""
    symbol = CURRENCY_SYMBOLS.get(currency)
    text = f"{abs(amount):,.2f}"
    sign = "-" if amount < 0 else ""
    return f"{sign}{symbol}{text}" if symbol else f"{sign}{currency} {text}"


@dataclass(frozen=True)
class ShippingTotals:
    """The memo's shipping, without tax and including it, in both currencies."""

    amount: float
    base_amount: float
    incl_tax: float
    base_incl_tax: float


@dataclass(frozen=True)
class TaxTotals:
    """The memo's shipping tax and its whole tax, in both currencies."""

    shipping_tax: float
    base_shipping_tax: float
    tax: float
    base_tax: float


def _base(order: Order, name: str) -> float:
    return order.base_of(name) or 0.0


def collect_shipping(
    order: Order, requested: float | None, *, display_incl_tax: bool
) -> ShippingTotals:
    """``Creditmemo\\Total\\Shipping::collect()``; ``requested`` is in base currency."""
    ship, base_ship = order.shipping_amount, _base(order, "shipping_amount")
    allowed = ship - (order.shipping_refunded or 0.0)
    base_allowed = base_ship - _base(order, "shipping_refunded")
    incl, base_incl = order.shipping_incl_tax, _base(order, "shipping_incl_tax")
    allowed_tax = order.shipping_tax_amount - (order.shipping_tax_refunded or 0.0)
    allowed_incl = allowed + allowed_tax
    base_allowed_incl = max(
        base_incl
        - _base(order, "shipping_refunded")
        - _base(order, "shipping_tax_refunded"),
        0.0,
    )
    if requested is None:
        return ShippingTotals(
            money(allowed),
            money(base_allowed),
            money(allowed_incl),
            money(base_allowed_incl),
        )
    desired = money(requested)
    max_allowed = base_allowed_incl if display_incl_tax else base_allowed
    original = base_incl if display_incl_tax else base_ship
    if desired >= money(max_allowed) + _EPSILON:
        base_currency = order.base_currency or order.currency
        raise bad_request(CM_SHIPPING_MAX, [format_price(max_allowed, base_currency)])
    ratio = desired / original if original > 0 else 0.0
    if desired > max_allowed - _EPSILON:
        amount, base_amount = allowed, base_allowed
    else:
        amount, base_amount = money(ship * ratio), money(base_ship * ratio)
    return ShippingTotals(
        money(amount), money(base_amount), money(incl * ratio), money(base_incl * ratio)
    )


def collect_tax(
    order: Order, shipping: ShippingTotals, *, is_last: bool, item_tax: float = 0.0
) -> TaxTotals:
    """``Creditmemo\\Total\\Tax::collect()``, order branch (the memo has no invoice)."""
    base_ship = _base(order, "shipping_amount")
    delta = money(base_ship - _base(order, "shipping_refunded"))
    shipping_tax = base_shipping_tax = 0.0
    partial = False
    if delta > shipping.base_amount:
        part = shipping.amount / order.shipping_amount
        base_part = shipping.base_amount / base_ship
        shipping_tax = money(order.shipping_tax_amount * part)
        base_shipping_tax = money(_base(order, "shipping_tax_amount") * base_part)
        partial = part < 1 and order.shipping_tax_amount > 0
    elif delta == shipping.base_amount:
        shipping_tax = order.shipping_tax_amount - (order.shipping_tax_refunded or 0.0)
        base_shipping_tax = _base(order, "shipping_tax_amount") - _base(
            order, "shipping_tax_refunded"
        )
    allowed = (order.tax_invoiced or 0.0) - (order.tax_refunded or 0.0)
    base_allowed = _base(order, "tax_invoiced") - _base(order, "tax_refunded")
    if is_last and not partial:
        tax, base_tax = allowed, base_allowed
    else:
        tax = min(allowed, item_tax + shipping_tax)
        base_tax = min(base_allowed, item_tax + base_shipping_tax)
    return TaxTotals(
        money(shipping_tax), money(base_shipping_tax), money(tax), money(base_tax)
    )
