"""``POST /V1/order/{id}/refund``: build the credit memo, validate it, then apply it.

This mirrors ``Magento\\Sales\\Model\\RefundOrder`` step by step:

1. ``CreditmemoFactory::createByOrder`` (2.4: ``canRefundItem`` and
   ``getQtyToRefund``) picks the memo rows: every item when ``items`` is empty,
   otherwise the listed ones (others get qty 0). A *dummy* row
   (``Order\\Item::isDummy()``) takes its qty from another row:

   - a configurable or fixed-price bundle child follows its listed parent (times the
     bundle selection qty), so a child-only list leaves the memo without products;
   - a dynamic-price bundle parent is on the memo only when one of its children is
     listed with a qty > 0, and then with its whole ``qty_invoiced`` (it is not
     totalled, but ``qty_refunded`` grows by it: the parent row's refunded qty says
     nothing about how many bundles are left; older releases used 1). Listing only
     the parent leaves its children at qty 0: "You can't create a creditmemo without
     products." or, with shipping still refundable, a shipping-only memo.
2. ``collectTotals()`` may throw before any validation: a row above the unrefunded qty
   (``We found an invalid quantity to refund item "%1".``) or too much shipping
   (``Maximum shipping amount allowed to refund is: %1``). The shipping and tax
   collectors live in ``totals``: omitted shipping means all of the remaining shipping
   and its tax; a given amount is base currency, incl. or excl. tax per the store's
   display setting, and below the maximum it is a ratio.
3. The validators (CanRefund, QuantityValidator, TotalsValidator, the item creation
   validator and SalesInventory's return-to-stock check) each add rendered lines
   that are joined into one 400 ``Creditmemo Document Validation Error(s):\\n...``.
4. The refund operation registers rows with qty > 0, updates the order totals and
   resolves the new state (closed / complete / processing).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from cancelsync.sandbox.magento.errors import (
    CM_BAD_STATE,
    CM_INVALID_QTY,
    CM_ITEM_NOT_IN_ORDER,
    CM_ITEM_QTY,
    CM_MONEY,
    CM_NO_PRODUCTS,
    CM_NOT_ALLOWED,
    CM_RETURN_NOT_IN_MEMO,
    CM_RETURN_NOT_IN_ORDER,
    CM_SKU_QTY,
    CM_TOTAL_POSITIVE,
    CM_VALIDATION_PREFIX,
    bad_request,
    money,
    php_str,
    render,
)
from cancelsync.sandbox.magento.models import (
    DEFAULT_STATUS,
    STOCK_TYPES,
    OrderItem,
    to_base,
)
from cancelsync.sandbox.magento.order import Order
from cancelsync.sandbox.magento.totals import (
    ShippingTotals,
    TaxTotals,
    collect_shipping,
    collect_tax,
    format_price,
)

__all__ = ["format_price"]  # re-exported for the state module


@dataclass
class RefundRequest:
    """The refund body, already type-checked (``items`` keep their request order)."""

    items: list[tuple[int, float]] = field(default_factory=list)
    notify: bool = False
    append_comment: bool = False
    comment: str | None = None
    comment_visible_on_front: int = 0
    shipping_amount: float | None = None
    adjustment_positive: float | None = None
    adjustment_negative: float | None = None
    return_to_stock_items: list[int] | None = None


@dataclass
class MemoLine:
    """One candidate memo row; ``qty`` as requested, ``applied_qty`` as registered."""

    item: OrderItem
    qty: float
    applied_qty: float
    row_total: float | None  # None for configurable children (not totalled)
    base_row_total: float | None = None


@dataclass
class RefundPlan:
    """A validated credit memo that has not touched the order yet (both currencies)."""

    order: Order
    request: RefundRequest
    lines: list[MemoLine]
    subtotal: float
    base_subtotal: float
    shipping: ShippingTotals
    tax: TaxTotals
    adjustment_positive: float
    adjustment_negative: float
    grand_total: float
    base_grand_total: float

    @property
    def shipping_amount(self) -> float:
        return self.shipping.amount

    @property
    def saved_lines(self) -> list[MemoLine]:
        """Rows with qty 0 are dropped when the memo is saved (RefundOperation)."""
        return [line for line in self.lines if line.qty > 0]


def _processed_qty(qty: float) -> float:
    """``Item::processQty()``: non-decimal qty is cast to int, negatives to 0."""
    as_int = float(int(qty))
    return as_int if as_int > 0 else 0.0


def plan_refund(
    order: Order, request: RefundRequest, *, display_shipping_incl_tax: bool = False
) -> RefundPlan:
    """Steps 1-2: the memo Magento would build, or the error thrown while totalling."""
    qtys = dict(request.items)  # a repeated order_item_id: the last one wins
    lines: list[MemoLine] = []
    for item in order.items:
        if _can_refund_item(order, item, qtys):
            qty = _qty_to_refund(order, item, qtys)
            lines.append(MemoLine(item, qty, _processed_qty(qty), None))

    subtotal = base_subtotal = 0.0
    is_last_memo = True
    for line in lines:
        item = line.item
        if item.is_dummy:
            continue
        applied = line.applied_qty
        if applied > item.qty_to_refund:
            raise bad_request(CM_INVALID_QTY, [item.name])
        remaining = item.row_invoiced - item.amount_refunded
        base_remaining = item.base_row_invoiced - item.base_amount_refunded
        is_last = php_str(applied) == php_str(item.qty_to_refund)
        is_last_memo = is_last_memo and is_last
        if not is_last and item.qty_invoiced > 0:
            available = item.qty_invoiced - item.qty_refunded
            remaining = money(remaining / available * applied)
            base_remaining = money(base_remaining / available * applied)
        line.row_total = remaining
        line.base_row_total = base_remaining
        subtotal += remaining
        base_subtotal += base_remaining

    shipping = collect_shipping(
        order, request.shipping_amount, display_incl_tax=display_shipping_incl_tax
    )
    tax = collect_tax(order, shipping, is_last=is_last_memo)
    positive = money(request.adjustment_positive or 0.0)
    negative = money(request.adjustment_negative or 0.0)
    rate = order.base_to_order_rate
    base_adjustments = (to_base(positive, rate) or 0.0) - (
        to_base(negative, rate) or 0.0
    )
    return RefundPlan(
        order,
        request,
        lines,
        money(subtotal),
        money(base_subtotal),
        shipping,
        tax,
        positive,
        negative,
        money(subtotal + shipping.amount + tax.tax + positive - negative),
        money(base_subtotal + shipping.base_amount + tax.base_tax + base_adjustments),
    )


def _can_refund_item(order: Order, item: OrderItem, qtys: dict[int, float]) -> bool:
    """``CreditmemoFactory::canRefundItem()`` (``qty_to_refund`` is never negative)."""
    if not item.is_dummy:
        return True
    children = order.children_of(item)
    if children:
        return not qtys or any(qtys.get(c.item_id, 0) > 0 for c in children)
    if order.parent_of(item) is not None:
        return not qtys or qtys.get(item.parent_item_id or 0, 0) > 0
    return False


def _qty_to_refund(order: Order, item: OrderItem, qtys: dict[int, float]) -> float:
    """``CreditmemoFactory::getQtyToRefund()`` of 2.4 (see the module docstring)."""
    if not item.is_dummy:
        if item.item_id in qtys:
            return qtys[item.item_id]
        return 0.0 if qtys else item.qty_to_refund
    parent = order.parent_of(item)
    if item.parent_item_id in qtys:
        parent_qty = qtys[item.parent_item_id]
    elif item.product_type == "bundle":
        parent_qty = item.qty_invoiced
    else:
        parent_qty = parent.qty_to_refund if parent is not None else 1.0
    return item.qty_per_parent * parent_qty


def validate_refund(
    plan: RefundPlan, find_item: Callable[[int], OrderItem | None]
) -> None:
    """Step 3: every failed check, rendered, joined into one 400."""
    order = plan.order
    messages: list[str] = []
    if order.state in ("payment_review", "holded", "canceled", "closed"):
        messages.append(render(CM_BAD_STATE, [order.status]))
    elif money(order.total_paid or 0.0) - (order.total_refunded or 0.0) == 0:
        # CanRefund's "!abs(x) < .0001" is true only for an exact zero.
        messages.append(CM_NOT_ALLOWED)

    total_qty = 0.0
    for line in plan.lines:
        item = line.item
        # QuantityValidator: a dummy row is refundable through its requested qty.
        can_refund = line.qty > 0 if item.is_dummy else item.qty_to_refund >= 0
        if not can_refund or not (line.qty <= item.qty_to_refund or item.is_dummy):
            messages.append(render(CM_SKU_QTY, [item.sku]))
        else:
            total_qty += line.qty
    shipping_left = money(order.shipping_amount) - (order.shipping_refunded or 0.0)
    if plan.grand_total <= 0:
        messages.append(CM_TOTAL_POSITIVE)
    elif total_qty <= 0 and shipping_left == 0:
        messages.append(CM_NO_PRODUCTS)

    # CreditmemoService::validateForRefund() compares base amounts.
    refunded = order.base_of("total_refunded") or 0.0
    paid = order.base_of("total_paid") or 0.0
    if money(refunded + plan.base_grand_total) > money(paid):
        messages.append(render(CM_MONEY, [paid - refunded]))

    for item_id, qty in plan.request.items:
        found = find_item(item_id)
        if found is None or found.order_id != order.entity_id:
            messages.append(CM_ITEM_NOT_IN_ORDER)
        elif not (qty <= found.qty_to_refund or found.is_dummy):
            messages.append(CM_ITEM_QTY)

    returned = plan.request.return_to_stock_items
    if returned is not None:
        on_memo = {line.item.item_id for line in plan.lines}
        for item_id in returned:
            found = find_item(item_id)
            if found is None:
                messages.append(CM_RETURN_NOT_IN_ORDER)
                break
            if found.item_id not in on_memo:
                messages.append(render(CM_RETURN_NOT_IN_MEMO, [found.sku]))
                break

    if messages:
        raise bad_request(CM_VALIDATION_PREFIX + "\n".join(messages))


def apply_to_order(plan: RefundPlan) -> None:
    """Step 4 on the order: item qtys and money, order totals, then the new state."""
    order = plan.order
    for line in plan.saved_lines:
        line.item.qty_refunded += line.applied_qty
        line.item.amount_refunded = money(
            line.item.amount_refunded + (line.row_total or 0)
        )
        line.item.base_amount_refunded = money(
            line.item.base_amount_refunded + (line.base_row_total or 0)
        )
    rate = order.base_to_order_rate
    totals = (
        ("total_refunded", plan.grand_total, plan.base_grand_total),
        ("total_offline_refunded", plan.grand_total, plan.base_grand_total),
        ("subtotal_refunded", plan.subtotal, plan.base_subtotal),
        ("shipping_refunded", plan.shipping.amount, plan.shipping.base_amount),
        ("shipping_tax_refunded", plan.tax.shipping_tax, plan.tax.base_shipping_tax),
        ("tax_refunded", plan.tax.tax, plan.tax.base_tax),
        ("adjustment_positive", plan.adjustment_positive,
         to_base(plan.adjustment_positive, rate) or 0.0),
        ("adjustment_negative", plan.adjustment_negative,
         to_base(plan.adjustment_negative, rate) or 0.0),
    )  # fmt: skip
    for name, amount, base_amount in totals:
        base_before = order.base_of(name) or 0.0
        setattr(order, name, money((getattr(order, name) or 0.0) + amount))
        order.base[name] = money(base_before + base_amount)
    order.state = order.resolve_state()
    order.status = DEFAULT_STATUS[order.state]


def returned_to_stock(plan: RefundPlan, *, msi: bool) -> dict[str, float]:
    """Per-SKU qty that goes back to stock after the refund.

    MSI returns memo rows whose own ``order_item_id`` is listed (so a configurable needs
    its child id); legacy CatalogInventory also accepts the parent's id. Only
    qty-holding types (simple, virtual) move stock; unlisted rows stay written off.
    """
    listed = set(plan.request.return_to_stock_items or [])
    out: dict[str, float] = {}
    if not listed:
        return out
    for line in plan.saved_lines:
        item = line.item
        if item.product_type not in STOCK_TYPES:
            continue
        if item.item_id in listed or (not msi and item.parent_item_id in listed):
            out[item.sku] = out.get(item.sku, 0.0) + line.qty
    return out
