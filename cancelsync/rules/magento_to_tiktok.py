"""Direction A rules: a Magento credit memo → a TikTok cancellation.

Pure functions. Full vs partial is judged cumulatively from the Magento order (every invoiced
unit refunded, whatever the shipping), never from Magento's state name. A partial credit memo
never cancels the whole TikTok order. After shipment TikTok only allows a return/refund, so the
merchant is told instead of the worker retrying forever.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from decimal import ROUND_FLOOR, Decimal

from cancelsync import reasons
from cancelsync.config import RefundToCancelConfig
from cancelsync.models import (
    MagentoCreditMemo,
    MagentoItem,
    MagentoOrder,
    TikTokCancellation,
    TikTokOrder,
)
from cancelsync.rules.decisions import (
    Apply,
    ApproveRequestPlan,
    Attention,
    Code,
    Decision,
    Done,
    Skip,
    SkuQuantities,
    TikTokCancelPlan,
    has_marker,
    sku_quantities,
)

ZERO = Decimal("0")
SHIPPED_STATUSES = frozenset(
    {
        "PARTIALLY_SHIPPING",
        "AWAITING_COLLECTION",
        "IN_TRANSIT",
        "DELIVERED",
        "COMPLETED",
    }
)


@dataclass(frozen=True)
class CreditMemoFacts:
    """What the engine observed about one Magento credit memo."""

    memo: MagentoCreditMemo
    magento_order: MagentoOrder  # re-read now: cumulative refunds
    created_by_us: bool  # the memo id is a result in our ledger
    tiktok_order: TikTokOrder | None
    pending_request: TikTokCancellation | None = (
        None  # buyer request awaiting the seller
    )
    # Every credit memo of the order, read now (gathered for line cancels only): what
    # the merchant refunded in all, to compare with what TikTok already shows cancelled.
    order_memos: tuple[MagentoCreditMemo, ...] | None = None


def looks_like_tiktok_order_id(value: str | None) -> bool:
    """TikTok order ids are long digit strings (about 18 digits).

    ``ext_order_id`` is shared with other channels' importers; a value that cannot be a
    TikTok id (e.g. an Amazon ``123-1234567-1234567``) is not this worker's business.
    """
    if not value:
        return False
    return value.isdigit() and 15 <= len(value) <= 22


def is_full_refund(order: MagentoOrder) -> bool:
    """Every invoiced unit of every item is refunded (shipping does not matter).

    Judged on the rows that carry the refund qty: a dynamic-price bundle through its
    children, since Magento adds the parent's whole invoiced qty to the parent's
    ``qty_refunded`` on *every* refund of its children.
    """
    invoiced = [it for it in order.refund_rows if it.qty_invoiced > 0]
    return bool(invoiced) and all(it.qty_refunded >= it.qty_invoiced for it in invoiced)


def linked_elsewhere(conflict: str) -> Attention:
    """The Magento order or the TikTok order is already paired with another order:
    cancelling on this memo's word could cancel the wrong TikTok order."""
    return Attention(
        f"{conflict}; check which TikTok order the Magento order belongs to",
        Code.LINK_CONFLICT,
    )


def decide_cancel(
    facts: CreditMemoFacts, settings: RefundToCancelConfig, market: str
) -> Decision:
    """Decide what to do on TikTok for one new Magento credit memo."""
    memo, order = facts.memo, facts.magento_order
    if facts.created_by_us or has_marker(memo.comments):
        return Skip(
            "credit memo created by cancelsync (echo of a TikTok cancellation)",
            Code.ECHO,
        )
    tiktok = facts.tiktok_order
    if tiktok is None:
        return Attention(
            f"TikTok order {order.tiktok_order_id} not found in this shop; check the "
            "store mapping (magento_store_ids) or the imported id",
            Code.MISMATCH,
        )
    if tiktok.status == "CANCELLED":
        return Done("TikTok order is already cancelled")
    full = is_full_refund(order)
    if not full and settings.partial_refunds != "cancel_items":
        # Partial credit memo: never a whole-order cancel. Left alone, the two platforms
        # now disagree (TikTok still expects these units shipped), so a person is told.
        return _partial_reported(facts)
    if tiktok.status in SHIPPED_STATUSES:
        return Attention(
            f"TikTok order is {tiktok.status}: it can no longer be cancelled; handle the "
            "refund as a TikTok return/refund in Seller Center",
            Code.SHIPPED,
        )
    if tiktok.status not in reasons.CANCELLABLE_STATUSES:
        return Attention(
            f"TikTok order status {tiktok.status} cannot be seller-cancelled",
            Code.BLOCKED,
        )

    if full:
        request = facts.pending_request
        if request is not None and settings.approve_buyer_requests:
            return Apply(
                ApproveRequestPlan(
                    tiktok.tiktok_order_id, request.cancel_id, _live_skus(tiktok)
                )
            )
        key = reasons.translate_reason(
            settings.cancel_reason, market=market, order_status=tiktok.status
        )
        if key is None:
            return Attention(
                _no_key(settings.cancel_reason, market, tiktok.status), Code.REASON
            )
        return Apply(
            TikTokCancelPlan(tiktok.tiktok_order_id, key, skus=_live_skus(tiktok))
        )

    return _partial_lines(facts, market)


def refunded_skus(memo: MagentoCreditMemo, order: MagentoOrder) -> Counter[str]:
    """Units per SKU (as TikTok sells them) a memo refunds, counted on top-level rows.

    Memo rows may include configurable children (qty 0 or duplicated), so children are
    left out: the parent row carries the quantity. A dynamic-price bundle is the
    exception: its parent row shows the whole invoiced qty whatever was refunded, so its
    units are the whole bundles its children's quantities make up.
    """
    memo_qty: dict[int, Decimal] = {}
    for row in memo.items:
        memo_qty[row.order_item_id] = memo_qty.get(row.order_item_id, ZERO) + row.qty
    wanted: Counter[str] = Counter()
    for row in memo.items:
        item = order.item(row.order_item_id)
        if item is not None and item.parent_item_id is not None:
            continue
        qty = row.qty
        if item is not None and order.priced_by_children(item):
            qty = _bundles_in(order, item, memo_qty)
        if qty > 0:
            wanted[row.sku] += int(qty)
    return wanted


def _still_to_cancel(facts: CreditMemoFacts, wanted: Counter[str]) -> Counter[str]:
    """This memo's units less those TikTok already shows seller-cancelled beyond what
    the merchant's other refunds account for.

    The effect, not the ledger, decides: after a lost database (or with a second
    worker) a memo re-read must not cancel further lines. The merchant's refunds are the
    order's memos without our marker (ours mirror TikTok's own cancellations).
    """
    order, tiktok = facts.magento_order, facts.tiktok_order
    assert tiktok is not None  # noqa: S101 - the caller checked
    assert facts.order_memos is not None  # noqa: S101 - the caller checked
    refunded: Counter[str] = Counter()
    for other in facts.order_memos:
        if not has_marker(other.comments):
            refunded += refunded_skus(other, order)
    cancelled = Counter(
        line.seller_sku or line.sku_id
        for line in tiktok.lines
        if line.cancelled and line.cancel_user == "SELLER"
    )
    left: Counter[str] = Counter()
    for sku, qty in wanted.items():
        # SKUs are matched as the line matcher does (seller SKU, else TikTok SKU id).
        gap = refunded[sku] - cancelled[sku]
        if gap > 0:
            left[sku] = min(qty, gap)
    return left


def _bundles_in(
    order: MagentoOrder, parent: MagentoItem, memo_qty: dict[int, Decimal]
) -> Decimal:
    children = order.children_of(parent.item_id)
    if not children:
        return ZERO
    return min(
        (memo_qty.get(c.item_id, ZERO) / order.qty_per_parent(c)).to_integral_value(
            ROUND_FLOOR
        )
        for c in children
    )


def _partial_reported(facts: CreditMemoFacts) -> Decision:
    """``partial_refunds = "report"``: the divergence is shown, the TikTok order untouched."""
    skus = refunded_skus(facts.memo, facts.magento_order)
    if not skus:
        return Skip(
            "credit memo refunds no items (shipping or adjustment only)", Code.OTHER
        )
    listed = ", ".join(f"{qty} x {sku}" for sku, qty in sorted(skus.items()))
    tiktok = facts.tiktok_order
    assert tiktok is not None  # noqa: S101 - checked by the caller
    if tiktok.status in SHIPPED_STATUSES:
        return Attention(
            f"partial credit memo refunds {listed} but the TikTok order is "
            f"{tiktok.status}: handle these units as a TikTok return/refund in Seller "
            "Center",
            Code.PARTIAL,
        )
    return Attention(
        f"partial credit memo refunds {listed}; the TikTok order was left as it is "
        '(partial_refunds = "report") and TikTok still expects these units shipped: '
        'cancel them in Seller Center, or set partial_refunds = "cancel_items"',
        Code.PARTIAL,
    )


def _no_key(reason: str, market: str, order_status: str) -> str:
    """Why a configured reason cannot cancel this order, and the keys that would.

    The family is never switched for the merchant (out of stock zeroes TikTok stock).
    """
    family = reasons.family_of(reason)
    what = f"{reason!r}" + (f" ({family})" if family and family != reason else "")
    valid = reasons.reasons_for(market, order_status)
    listed = "; ".join(f"{key} ({meaning})" for key, meaning in valid.items())
    return (
        f"cancel reason {what} has no key for a {order_status} order in market "
        f"{market}; keys that would work for this order: {listed or 'none'}. Set "
        "stores.magento_refund_to_tiktok_cancel.cancel_reason to one of them (see "
        "`cancelsync reasons`), then `cancelsync retry`"
    )


def _partial_lines(facts: CreditMemoFacts, market: str) -> Decision:
    memo, tiktok = facts.memo, facts.tiktok_order
    assert tiktok is not None  # noqa: S101 - checked by the caller
    if reasons.normalize_market(market) not in reasons.PARTIAL_CANCEL_MARKETS:
        return Attention(
            f"partial credit memo: TikTok allows line cancels only in US/UK (shop market "
            f"{market}); handle it in Seller Center",
            Code.PARTIAL,
        )
    key = reasons.translate_reason(
        "out_of_stock", market=market, order_status=tiktok.status
    )
    if key is None:
        return Attention(
            f"no out-of-stock reason for a {tiktok.status} order in {market}",
            Code.REASON,
        )
    wanted = refunded_skus(memo, facts.magento_order)
    if facts.order_memos is not None and wanted:
        wanted = _still_to_cancel(facts, wanted)
        if not wanted:
            return Done(
                "TikTok already shows the refunded units seller-cancelled (found on "
                "TikTok, not sent again)"
            )
    if not wanted:
        return Skip(
            "credit memo refunds no items (shipping or adjustment only)", Code.OTHER
        )
    live = [line for line in tiktok.lines if not line.cancelled]
    chosen: list[str] = []
    for sku, qty in sorted(wanted.items()):
        matches = [
            line.line_id for line in live if sku in (line.seller_sku, line.sku_id)
        ]
        if len(matches) < qty:
            return Attention(
                f"credit memo refunds {qty} x {sku} but the TikTok order has "
                f"{len(matches)} such live line(s)",
                Code.MISMATCH,
            )
        chosen.extend(matches[:qty])
    if len(chosen) >= len(live):
        return Attention(
            "partial credit memo would cancel every remaining TikTok line; refusing to "
            "cancel the whole order for a partial refund",
            Code.PARTIAL,
        )
    return Apply(
        TikTokCancelPlan(
            tiktok.tiktok_order_id,
            key,
            tuple(chosen),
            skus=sku_quantities(sorted(wanted.items())),
        )
    )


def _live_skus(tiktok: TikTokOrder) -> SkuQuantities:
    """The units a whole-order cancel takes: one per live line (TikTok has no qty)."""
    return sku_quantities(
        (line.seller_sku or line.sku_id, 1)
        for line in tiktok.lines
        if not line.cancelled
    )


# TikTok's "this reason key is not usable" answers to a seller cancel (reference §5.7).
REASON_REFUSED_CODES = frozenset({"25001014", "25001015", "25001020", "25001021"})
_REASON_FIX = (
    "set stores.magento_refund_to_tiktok_cancel.cancel_reason accordingly, then "
    "`cancelsync retry` (a family is never switched silently: out_of_stock sets the "
    "SKU's TikTok stock to 0)"
)


def reason_after_refusal(
    plan: TikTokCancelPlan,
    refusal: str,
    eligible_keys: list[str] | None,
    configured_reason: str,
    market: str,
) -> Apply | Attention:
    """TikTok refused ``plan``'s reason key: re-plan with a key of the same family from
    the order's eligibility, or tell a person which keys TikTok takes.

    ``eligible_keys`` is the order's ``available_reason_names`` (``None`` when the
    eligibility API could not be asked). The family is never switched: an out-of-stock
    reason would zero the SKU's TikTok stock.
    """
    refused = plan.cancel_reason
    family = reasons.family_of_key(refused) or reasons.family_of(configured_reason)
    if eligible_keys is None:
        table = ", ".join(_table_keys(market)) or "none"
        return Attention(
            f"{refusal}; its eligibility API is not available to list the keys it "
            f"takes now (the reference table for {market}: {table}); {_REASON_FIX}",
            Code.REASON,
        )
    same = [
        k for k in eligible_keys if k != refused and reasons.family_of_key(k) == family
    ]
    if same:
        return Apply(
            replace(plan, cancel_reason=same[0]),
            note=f"{refusal}; the order's eligibility lists {same[0]} of the same "
            f"family ({family})",
        )
    offered = ", ".join(eligible_keys) or "none"
    return Attention(
        f"{refusal}; the order's eligibility lists no {family or 'matching'} key, "
        f"only: {offered}; {_REASON_FIX}",
        Code.REASON,
    )


def _table_keys(market: str) -> list[str]:
    """Every key of the reference table for a market (both status groups)."""
    keys: list[str] = []
    for status in ("UNPAID", "AWAITING_SHIPMENT"):
        keys.extend(reasons.reasons_for(market, status))
    return keys
