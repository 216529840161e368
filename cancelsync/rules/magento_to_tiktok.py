"""Direction A rules: a Magento credit memo → a TikTok cancellation.

Pure functions. Full vs partial is judged cumulatively from the Magento order (every invoiced
unit refunded, whatever the shipping), never from Magento's state name. A partial credit memo
never cancels the whole TikTok order. After shipment TikTok only allows a return/refund, so the
merchant is told instead of the worker retrying forever.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from cancelsync import reasons
from cancelsync.config import RefundToCancelConfig
from cancelsync.models import (
    MagentoCreditMemo,
    MagentoOrder,
    TikTokCancellation,
    TikTokOrder,
)
from cancelsync.rules.decisions import (
    Apply,
    ApproveRequestPlan,
    Attention,
    Decision,
    Done,
    Skip,
    TikTokCancelPlan,
    has_marker,
)

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


def looks_like_tiktok_order_id(value: str | None) -> bool:
    """TikTok order ids are long digit strings (about 18 digits).

    ``ext_order_id`` is shared with other channels' importers; a value that cannot be a
    TikTok id (e.g. an Amazon ``123-1234567-1234567``) is not this worker's business.
    """
    if not value:
        return False
    return value.isdigit() and 15 <= len(value) <= 22


def is_full_refund(order: MagentoOrder) -> bool:
    """Every invoiced unit of every item is refunded (shipping does not matter)."""
    top = order.top_level_items
    invoiced = [it for it in top if it.qty_invoiced > 0]
    return bool(invoiced) and all(it.qty_refunded >= it.qty_invoiced for it in invoiced)


def decide_cancel(
    facts: CreditMemoFacts, settings: RefundToCancelConfig, market: str
) -> Decision:
    """Decide what to do on TikTok for one new Magento credit memo."""
    memo, order = facts.memo, facts.magento_order
    if facts.created_by_us or has_marker(memo.comments):
        return Skip("credit memo created by cancelsync (echo of a TikTok cancellation)")
    tiktok = facts.tiktok_order
    if tiktok is None:
        return Attention(
            f"TikTok order {order.tiktok_order_id} not found in this shop; check the "
            "store mapping (magento_store_ids) or the imported id"
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
            "refund as a TikTok return/refund in Seller Center"
        )
    if tiktok.status not in reasons.CANCELLABLE_STATUSES:
        return Attention(
            f"TikTok order status {tiktok.status} cannot be seller-cancelled"
        )

    if full:
        request = facts.pending_request
        if request is not None and settings.approve_buyer_requests:
            return Apply(ApproveRequestPlan(tiktok.tiktok_order_id, request.cancel_id))
        key = reasons.translate_reason(
            settings.cancel_reason, market=market, order_status=tiktok.status
        )
        if key is None:
            return Attention(_no_key(settings.cancel_reason, market, tiktok.status))
        return Apply(TikTokCancelPlan(tiktok.tiktok_order_id, key))

    return _partial_lines(facts, market)


def refunded_skus(memo: MagentoCreditMemo, order: MagentoOrder) -> Counter[str]:
    """Units per SKU a memo refunds, counted on top-level rows.

    Memo rows may include configurable children (qty 0 or duplicated), so children are
    left out: the parent row carries the quantity.
    """
    wanted: Counter[str] = Counter()
    for row in memo.items:
        item = order.item(row.order_item_id)
        if item is not None and item.parent_item_id is not None:
            continue
        if row.qty > 0:
            wanted[row.sku] += int(row.qty)
    return wanted


def _partial_reported(facts: CreditMemoFacts) -> Decision:
    """``partial_refunds = "report"``: the divergence is shown, the TikTok order untouched."""
    skus = refunded_skus(facts.memo, facts.magento_order)
    if not skus:
        return Skip("credit memo refunds no items (shipping or adjustment only)")
    listed = ", ".join(f"{qty} x {sku}" for sku, qty in sorted(skus.items()))
    tiktok = facts.tiktok_order
    assert tiktok is not None  # noqa: S101 - checked by the caller
    if tiktok.status in SHIPPED_STATUSES:
        return Attention(
            f"partial credit memo refunds {listed} but the TikTok order is "
            f"{tiktok.status}: handle these units as a TikTok return/refund in Seller "
            "Center"
        )
    return Attention(
        f"partial credit memo refunds {listed}; the TikTok order was left as it is "
        '(partial_refunds = "report") and TikTok still expects these units shipped: '
        'cancel them in Seller Center, or set partial_refunds = "cancel_items"'
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
            f"{market}); handle it in Seller Center"
        )
    key = reasons.translate_reason(
        "out_of_stock", market=market, order_status=tiktok.status
    )
    if key is None:
        return Attention(
            f"no out-of-stock reason for a {tiktok.status} order in {market}"
        )
    wanted = refunded_skus(memo, facts.magento_order)
    if not wanted:
        return Skip("credit memo refunds no items (shipping or adjustment only)")
    live = [line for line in tiktok.lines if not line.cancelled]
    chosen: list[str] = []
    for sku, qty in sorted(wanted.items()):
        matches = [
            line.line_id for line in live if sku in (line.seller_sku, line.sku_id)
        ]
        if len(matches) < qty:
            return Attention(
                f"credit memo refunds {qty} x {sku} but the TikTok order has "
                f"{len(matches)} such live line(s)"
            )
        chosen.extend(matches[:qty])
    if len(chosen) >= len(live):
        return Attention(
            "partial credit memo would cancel every remaining TikTok line; refusing to "
            "cancel the whole order for a partial refund"
        )
    return Apply(TikTokCancelPlan(tiktok.tiktok_order_id, key, tuple(chosen)))
