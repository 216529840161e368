"""Direction B rules: a TikTok cancellation → a Magento offline refund (or cancel).

Pure functions: observed facts and the store's settings in, a ``Decision`` out. No I/O, no
clock reads. TikTok pays the buyer; the Magento credit memo only records it (and, with
``restock``, returns the items to stock).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from cancelsync.config import CancelToRefundConfig
from cancelsync.models import MagentoItem, MagentoOrder, TikTokCancellation, TikTokOrder
from cancelsync.rules.decisions import (
    Apply,
    Attention,
    Code,
    Decision,
    Done,
    MagentoCancelPlan,
    RefundPlan,
    Skip,
    marker,
    sku_quantities,
)

CENT = Decimal("0.01")
COUNTED_ROLES = frozenset({"BUYER", "SYSTEM", "OPERATOR"})


class LinkStatus(StrEnum):
    """What the engine found on the Magento side for one TikTok order."""

    LINKED = "linked"
    NOT_IMPORTED = "not_imported"  # no Magento order carries the TikTok order id
    AMBIGUOUS = "ambiguous"  # several Magento orders carry it
    CONFLICT = "conflict"  # the Magento order is already linked to another TikTok order
    GONE = "gone"  # the linked Magento order no longer exists


@dataclass(frozen=True)
class LinkFacts:
    status: LinkStatus
    detail: str = ""  # the orders found, or the conflicting link, in words

    @classmethod
    def linked(cls) -> LinkFacts:
        return cls(LinkStatus.LINKED)


@dataclass(frozen=True)
class CancellationFacts:
    """What the engine observed about one TikTok cancellation."""

    cancellation: TikTokCancellation
    caused_by_us: bool  # our own seller cancel, or a buyer request we approved
    tiktok_order: TikTokOrder | None = (
        None  # detail, to know whether the order is now whole-cancelled
    )
    # A Magento credit memo already carrying this cancellation's marker: the refund was
    # made (by this worker before its database was lost, or by another worker).
    recorded_by_memo: int | None = None


def counts(
    cancellation: TikTokCancellation, settings: CancelToRefundConfig
) -> Decision | None:
    """Whether this cancellation is one to mirror; ``None`` means go on, else why not.

    Only cancellations TikTok has accepted count, initiated by the buyer, the system or the
    platform; seller cancellations only when the store opts in.
    """
    c = cancellation
    if not c.accepted:
        return Skip(
            f"cancellation status {c.cancel_status} is not an accepted cancellation",
            Code.NOT_COUNTED,
        )
    if c.role == "SELLER" and not settings.include_seller_cancellations:
        return Skip(
            "seller cancellation (Seller Center); include_seller_cancellations is off",
            Code.NOT_COUNTED,
        )
    if c.role not in COUNTED_ROLES and c.role != "SELLER":
        return Skip(
            f"cancellation by {c.role or 'unknown role'} is not mirrored",
            Code.NOT_COUNTED,
        )
    return None


def not_ours(
    facts: CancellationFacts, settings: CancelToRefundConfig
) -> Decision | None:
    """An echo of our own write, or a cancellation this store does not mirror."""
    if facts.caused_by_us:
        return Skip(
            "caused by cancelsync itself (echo of the other direction)", Code.ECHO
        )
    return counts(facts.cancellation, settings)


def link_problem(link: LinkFacts) -> Decision | None:
    """No single Magento order to refund: why, and whether a person must look.

    A cancellation of an order that never reached Magento is skipped (counted by
    ``status`` and probed by ``check``); two orders for one TikTok order, or a Magento
    order already tied to another TikTok order, could refund the wrong money.
    """
    match link.status:
        case LinkStatus.LINKED:
            return None
        case LinkStatus.NOT_IMPORTED:
            return Skip(
                "no Magento order carries this TikTok order id (never imported)",
                Code.NOT_IMPORTED,
            )
        case LinkStatus.AMBIGUOUS:
            return Attention(
                f"several Magento orders carry this TikTok order id: {link.detail}; "
                "refund the right one by hand",
                Code.AMBIGUOUS_LINK,
            )
        case LinkStatus.CONFLICT:
            return Attention(
                f"{link.detail}; check which TikTok order the Magento order belongs to",
                Code.LINK_CONFLICT,
            )
        case LinkStatus.GONE:
            return Attention(
                f"linked Magento order {link.detail} no longer exists", Code.ORDER_GONE
            )


def unlinked(link: LinkFacts) -> Decision:
    """The decision for an order without a usable link (never ``LINKED``)."""
    return link_problem(link) or Attention(
        "no linked Magento order", Code.OTHER
    )  # unreachable for the statuses above; kept total for the type checker


def before_magento(
    facts: CancellationFacts, link: LinkFacts, settings: CancelToRefundConfig
) -> Decision | None:
    """Everything decidable before the Magento order is read (saves the read)."""
    return not_ours(facts, settings) or link_problem(link)


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
    """Decide what to do in Magento for one accepted TikTok cancellation.

    In order: not ours to mirror; the Magento order's state; what kind of cancellation it
    is; what is invoiced and already refunded; then the refund itself.
    """
    whole = whole_order_cancelled(facts)
    first = (
        not_ours(facts, settings)
        or _already_recorded(facts)
        or order_blocked(magento_order)
        or _lines_unclear(facts, whole)
        or _nothing_invoiced(facts, magento_order, whole)
        or _partly_invoiced(magento_order)
    )
    if first is not None:
        return first
    if fully_refunded(magento_order):
        return Done(
            f"Magento order #{magento_order.magento_increment_id} is already fully refunded"
        )
    return _refund(facts, magento_order, settings, whole)


def _already_recorded(facts: CancellationFacts) -> Decision | None:
    """Magento's memos are the second line against a double refund (after the ledger):
    a partial refund repeated would be accepted by Magento, so the marker decides."""
    if facts.recorded_by_memo is None:
        return None
    return Done(
        f"Magento credit memo {facts.recorded_by_memo} already records this "
        f"cancellation ({marker(facts.cancellation.cancel_id)})"
    )


def order_blocked(order: MagentoOrder) -> Decision | None:
    """Magento states in which no credit memo can (or need) be made."""
    number = order.magento_increment_id
    if order.state == "holded":
        return Attention(
            f"Magento order #{number} is on hold; unhold it, then `cancelsync retry`",
            Code.BLOCKED,
        )
    if order.state == "payment_review":
        return Attention(
            f"Magento order #{number} is in payment review; resolve it, then "
            "`cancelsync retry`",
            Code.BLOCKED,
        )
    if order.state in ("canceled", "closed"):
        return Done(f"Magento order #{number} is already {order.state}")
    return None


def _lines_unclear(facts: CancellationFacts, whole: bool) -> Decision | None:
    if not whole and not facts.cancellation.lines:
        # A record without lines on an order TikTok still shows as live: refunding
        # everything on that word alone could refund goods that are still shipping.
        return Attention(
            "TikTok cancellation lists no lines but the order is not cancelled; "
            "check it in Seller Center",
            Code.MISMATCH,
        )
    return None


def _comment(cancel: TikTokCancellation, whole: bool) -> str:
    return (
        f"cancelsync: TikTok order {cancel.tiktok_order_id} cancellation {cancel.cancel_id} "
        f"({cancel.role.lower() or 'unknown'}) {'whole order' if whole else 'partial'} "
        f"{marker(cancel.cancel_id)}"
    )


def _nothing_invoiced(
    facts: CancellationFacts, order: MagentoOrder, whole: bool
) -> Decision | None:
    """An order with nothing invoiced cannot be refunded: it is cancelled instead."""
    invoiced_rows = [it for it in order.top_level_items if it.qty_invoiced > 0]
    if invoiced_rows or order.total_invoiced > 0:
        return None
    if not whole:
        return Attention(
            "partial cancellation of an order with nothing invoiced in Magento: "
            "orders/{id}/cancel can only cancel the whole order; adjust it by hand",
            Code.MISMATCH,
        )
    open_qty = (
        (it.sku, it.qty_ordered - it.qty_canceled) for it in order.top_level_items
    )
    return Apply(
        MagentoCancelPlan(
            order.magento_entity_id,
            _comment(facts.cancellation, whole),
            skus=sku_quantities(open_qty),
        )
    )


def _partly_invoiced(order: MagentoOrder) -> Decision | None:
    partly = [
        it
        for it in order.top_level_items
        if it.qty_invoiced < it.qty_ordered - it.qty_canceled
    ]
    if not partly:
        return None
    return Attention(
        f"Magento order #{order.magento_increment_id} is only partly invoiced "
        f"({', '.join(it.sku for it in partly)}); refund it by hand",
        Code.MISMATCH,
    )


# (row refunded, qty): a dynamic-price bundle is listed through its children (Magento
# refunds its parent only through them); configurables and fixed-price bundles on the
# parent row (their children follow it).
RefundItems = list[tuple[MagentoItem, Decimal]]


def _whole_items(order: MagentoOrder) -> RefundItems | Decision:
    items = [(it, it.refundable_qty) for it in order.refund_rows]
    items = [(it, qty) for it, qty in items if qty > 0]
    if items:
        return items
    # An item-less memo is not possible (the client refuses one: Magento would refund
    # every row); what is left is shipping or an adjustment.
    if order.shipping_left > 0:
        return Attention(
            f"every item of Magento order #{order.magento_increment_id} is already "
            f"refunded but {order.shipping_left} shipping is not; refund the shipping "
            "by hand",
            Code.MISMATCH,
        )
    return Done("every item and the shipping are already refunded in Magento")


def _cancelled_units(order: TikTokOrder | None) -> Counter[str] | None:
    """Units of each SKU TikTok shows cancelled on the whole order (one line per unit);
    ``None`` without the order's detail."""
    if order is None:
        return None
    return Counter(ln.seller_sku or ln.sku_id for ln in order.lines if ln.cancelled)


def _line_items(
    cancel: TikTokCancellation,
    order: MagentoOrder,
    tiktok_cancelled: Counter[str] | None = None,
) -> RefundItems | Decision:
    """The Magento rows and quantities of a partial cancellation's lines (by SKU).

    Magento's refunded units of a SKU should end equal to TikTok's cancelled ones: a
    unit already refunded in Magento (the merchant's memo, which the README's advice for
    a partial memo then has cancelled in Seller Center) is not refunded, nor restocked,
    again. TikTok's count is never taken below this cancellation's own (a detail that
    lags behind the record).
    """
    wanted = Counter(line.seller_sku or line.sku_id for line in cancel.lines)
    items: RefundItems = []
    for sku, qty in sorted(wanted.items()):
        row = _row_for_sku(order.top_level_items, sku)
        if row is None:
            return Attention(
                f"TikTok SKU {sku!r} is not on Magento order #{order.magento_increment_id}",
                Code.MISMATCH,
            )
        by_children = order.priced_by_children(row)
        left = order.bundles_left(row) if by_children else row.refundable_qty
        if tiktok_cancelled is not None:
            refunded = row.qty_invoiced - left
            qty = min(qty, max(0, max(tiktok_cancelled[sku], qty) - int(refunded)))
        if left <= 0 or qty <= 0:
            continue  # already refunded (e.g. by the merchant): nothing to add
        if qty > left:
            return Attention(
                f"TikTok cancelled {qty} x {sku} but Magento order "
                f"#{order.magento_increment_id} has only {left} left to refund",
                Code.MISMATCH,
            )
        if by_children:
            items.extend(
                (child, order.qty_per_parent(child) * qty)
                for child in order.children_of(row.item_id)
            )
        else:
            items.append((row, Decimal(qty)))
    if not items:
        return Done("the cancelled lines are already refunded in Magento")
    return items


def _restock_ids(order: MagentoOrder, items: RefundItems) -> tuple[int, ...]:
    """MSI returns only the listed ids' own rows: list the child simples; the parent id
    is harmless (the validator only requires it to be on the memo, and a dynamic
    bundle's parent rides along with its listed children)."""
    stock_ids: list[int] = []
    for it, _qty in items:
        stock_ids.extend(child.item_id for child in order.children_of(it.item_id))
        stock_ids.append(it.item_id)
        if it.parent_item_id is not None and it.parent_item_id not in stock_ids:
            stock_ids.append(it.parent_item_id)
    return tuple(stock_ids)


def _refund(
    facts: CancellationFacts,
    order: MagentoOrder,
    settings: CancelToRefundConfig,
    whole: bool,
) -> Decision:
    cancel = facts.cancellation
    items = (
        _whole_items(order)
        if whole
        else _line_items(cancel, order, _cancelled_units(facts.tiktok_order))
    )
    if not isinstance(items, list):
        return items
    # A whole-order refund leaves shipping out of the request: Magento then refunds all
    # that is left, tax included, in its base currency; a value we sent would be read in
    # base currency and, on stores showing shipping incl. tax, as a ratio of it (§5).
    shipping_left = order.shipping_left if whole else Decimal("0")
    amount = sum((it.unit_refund_value * qty for it, qty in items), Decimal("0"))
    amount = amount.quantize(CENT) + shipping_left
    available = order.total_paid - order.total_refunded
    if amount - available > CENT:
        return Attention(
            f"refund of {amount} would exceed the {available} left to refund on Magento order "
            f"#{order.magento_increment_id}",
            Code.MISMATCH,
        )
    plan = RefundPlan(
        magento_entity_id=order.magento_entity_id,
        items=tuple((it.item_id, qty) for it, qty in items),
        shipping_amount=None if whole else Decimal("0"),
        return_to_stock_items=_restock_ids(order, items) if settings.restock else (),
        comment=_comment(cancel, whole),
        expected_amount=amount,
        whole_order=whole,
        tiktok_cancel_id=cancel.cancel_id,
        skus=sku_quantities((it.sku, qty) for it, qty in items),
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
