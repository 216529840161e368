"""Direction B rules: a TikTok cancellation → a Magento offline refund (or cancel).

Pure functions: observed facts and the store's settings in, a ``Decision`` out. No I/O, no
clock reads. TikTok pays the buyer; the Magento credit memo only records it (and, with
``restock``, returns the items to stock).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from decimal import Decimal

from cancelsync.config import CancelToRefundConfig
from cancelsync.models import MagentoItem, MagentoOrder, TikTokCancellation, TikTokOrder
from cancelsync.rules.decisions import (
    Apply,
    Attention,
    Decision,
    Done,
    MagentoCancelPlan,
    RefundPlan,
    Skip,
    marker,
)

CENT = Decimal("0.01")
COUNTED_ROLES = frozenset({"BUYER", "SYSTEM", "OPERATOR"})


@dataclass(frozen=True)
class CancellationFacts:
    """What the engine observed about one TikTok cancellation."""

    cancellation: TikTokCancellation
    caused_by_us: bool  # our own seller cancel, or a buyer request we approved
    tiktok_order: TikTokOrder | None = (
        None  # detail, to know whether the order is now whole-cancelled
    )


def counts(
    cancellation: TikTokCancellation, settings: CancelToRefundConfig
) -> Decision | None:
    """Whether this cancellation is one to mirror; ``None`` means go on, else why not.

    Only cancellations TikTok has accepted count, initiated by the buyer, the system or the
    platform; seller cancellations only when the store opts in; never our own (no echo).
    """
    c = cancellation
    if not c.accepted:
        return Skip(
            f"cancellation status {c.cancel_status} is not an accepted cancellation"
        )
    if c.role == "SELLER" and not settings.include_seller_cancellations:
        return Skip(
            "seller cancellation (Seller Center); include_seller_cancellations is off"
        )
    if c.role not in COUNTED_ROLES and c.role != "SELLER":
        return Skip(f"cancellation by {c.role or 'unknown role'} is not mirrored")
    return None


def whole_order_cancelled(facts: CancellationFacts) -> bool:
    """The TikTok order is cancelled as a whole (after this cancellation)."""
    order = facts.tiktok_order
    if order is None:
        # Without the order's detail only a line-less (whole-order) record can tell.
        return not facts.cancellation.lines
    if order.status == "CANCELLED":
        return True
    return bool(order.lines) and all(line.cancelled for line in order.lines)


def decide_refund(
    facts: CancellationFacts,
    magento_order: MagentoOrder,
    settings: CancelToRefundConfig,
) -> Decision:
    """Decide what to do in Magento for one accepted TikTok cancellation."""
    cancel = facts.cancellation
    if facts.caused_by_us:
        return Skip("caused by cancelsync itself (echo of the other direction)")
    not_counted = counts(cancel, settings)
    if not_counted is not None:
        return not_counted

    order = magento_order
    state = order.state
    if state == "holded":
        return Attention(
            f"Magento order #{order.magento_increment_id} is on hold; unhold it, then "
            "`cancelsync retry`"
        )
    if state == "payment_review":
        return Attention(
            f"Magento order #{order.magento_increment_id} is in payment review; resolve it, "
            "then `cancelsync retry`"
        )
    if state == "canceled":
        return Done(f"Magento order #{order.magento_increment_id} is already canceled")
    if state == "closed":
        return Done(f"Magento order #{order.magento_increment_id} is already closed")

    whole = whole_order_cancelled(facts)
    if not whole and not cancel.lines:
        # A record without lines on an order TikTok still shows as live: refunding
        # everything on that word alone could refund goods that are still shipping.
        return Attention(
            "TikTok cancellation lists no lines but the order is not cancelled; "
            "check it in Seller Center"
        )
    top = order.top_level_items
    invoiced_rows = [it for it in top if it.qty_invoiced > 0]
    comment = (
        f"cancelsync: TikTok order {cancel.tiktok_order_id} cancellation {cancel.cancel_id} "
        f"({cancel.role.lower() or 'unknown'}) {'whole order' if whole else 'partial'} "
        f"{marker(cancel.cancel_id)}"
    )
    if not invoiced_rows and order.total_invoiced <= 0:
        if not whole:
            return Attention(
                "partial cancellation of an order with nothing invoiced in Magento: "
                "orders/{id}/cancel can only cancel the whole order; adjust it by hand"
            )
        return Apply(MagentoCancelPlan(order.magento_entity_id, comment))
    partly = [it for it in top if it.qty_invoiced < it.qty_ordered - it.qty_canceled]
    if partly:
        return Attention(
            f"Magento order #{order.magento_increment_id} is only partly invoiced "
            f"({', '.join(it.sku for it in partly)}); refund it by hand"
        )
    if fully_refunded(order):
        return Done(
            f"Magento order #{order.magento_increment_id} is already fully refunded"
        )

    shipping: Decimal | None
    # (row refunded, qty): a dynamic-price bundle is listed through its children
    # (Magento refunds its parent only through them); configurables and fixed-price
    # bundles on the parent row (their children follow it).
    items: list[tuple[MagentoItem, Decimal]]
    if whole:
        items = [(it, it.refundable_qty) for it in order.refund_rows]
        items = [(it, qty) for it, qty in items if qty > 0]
        # Shipping is left out of the request: Magento then refunds all that is left,
        # tax included, in its base currency; a value we sent would be read in base
        # currency and, on stores showing shipping incl. tax, as a ratio of it (§5).
        shipping = None
        shipping_left = order.shipping_left
        if not items:
            # An item-less memo is not possible (the client refuses one: Magento would
            # refund every row); what is left is shipping or an adjustment.
            if shipping_left > 0:
                return Attention(
                    f"every item of Magento order #{order.magento_increment_id} is already "
                    f"refunded but {shipping_left} shipping is not; refund the shipping "
                    "by hand"
                )
            return Done("every item and the shipping are already refunded in Magento")
    else:
        wanted = Counter(line.seller_sku or line.sku_id for line in cancel.lines)
        items = []
        for sku, qty in sorted(wanted.items()):
            row = _row_for_sku(top, sku)
            if row is None:
                return Attention(
                    f"TikTok SKU {sku!r} is not on Magento order #{order.magento_increment_id}"
                )
            by_children = order.priced_by_children(row)
            left = order.bundles_left(row) if by_children else row.refundable_qty
            if left <= 0:
                continue  # already refunded (e.g. by the merchant): nothing to add
            if qty > left:
                return Attention(
                    f"TikTok cancelled {qty} x {sku} but Magento order "
                    f"#{order.magento_increment_id} has only {left} left to refund"
                )
            if by_children:
                items.extend(
                    (child, order.qty_per_parent(child) * qty)
                    for child in order.children_of(row.item_id)
                )
            else:
                items.append((row, Decimal(qty)))
        shipping = shipping_left = Decimal("0")
        if not items:
            return Done("the cancelled lines are already refunded in Magento")

    amount = sum((it.unit_refund_value * qty for it, qty in items), Decimal("0"))
    amount = amount.quantize(CENT) + shipping_left
    available = order.total_paid - order.total_refunded
    if amount - available > CENT:
        return Attention(
            f"refund of {amount} would exceed the {available} left to refund on Magento order "
            f"#{order.magento_increment_id}"
        )
    stock_ids: list[int] = []
    if settings.restock:
        for it, _qty in items:
            # MSI returns only the listed ids' own rows: list the child simples; the parent
            # id is harmless (the validator only requires it to be on the memo, and a
            # dynamic bundle's parent rides along with its listed children).
            stock_ids.extend(child.item_id for child in order.children_of(it.item_id))
            stock_ids.append(it.item_id)
            if it.parent_item_id is not None and it.parent_item_id not in stock_ids:
                stock_ids.append(it.parent_item_id)
    plan = RefundPlan(
        magento_entity_id=order.magento_entity_id,
        items=tuple((it.item_id, qty) for it, qty in items),
        shipping_amount=shipping,
        return_to_stock_items=tuple(stock_ids),
        comment=comment,
        expected_amount=amount,
        whole_order=whole,
        tiktok_cancel_id=cancel.cancel_id,
    )
    return Apply(plan)


def fully_refunded(order: MagentoOrder) -> bool:
    """Every invoiced unit refunded and no money left: judged by qty and money, not state."""
    items_done = all(it.refundable_qty <= 0 for it in order.refund_rows)
    money_left = order.total_paid - order.total_refunded
    return items_done and money_left < CENT


def amount_mismatch(expected: Decimal, tiktok_refund_total: Decimal | None) -> bool:
    """TikTok's refund amount differs from Magento's own by more than a cent."""
    if tiktok_refund_total is None:
        return False
    return abs(expected - tiktok_refund_total) > CENT


def _row_for_sku(rows: tuple[MagentoItem, ...], sku: str) -> MagentoItem | None:
    for it in rows:
        if it.sku == sku:
            return it
    return None
