"""Decision types the rules return, and the action plans they carry.

A rule takes observed facts and a store's settings and returns exactly one of:

- ``Apply(plan)``: make this remote write;
- ``Done(reason)``: the effect is already there, nothing to write;
- ``Skip(reason)``: this event is not ours to act on (not linked, echo, setting off, ...);
- ``Attention(reason)``: a person must look (shipped order, ambiguity, on hold, ...);
- ``Defer(reason)``: not yet decidable; look again later.

Plans are plain data: the engine turns them into client calls.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

# (SKU, quantity) pairs a plan touches, for people (the dry-run plan, the logs); the
# remote write never uses them. Left out of equality: they describe, not decide.
SkuQuantities = tuple[tuple[str, Decimal], ...]


def sku_quantities(pairs: Iterable[tuple[str, Decimal | int]]) -> SkuQuantities:
    """``(sku, qty)`` pairs merged by SKU (first seen first), zero quantities left out,
    each quantity without trailing zeros (Magento sends ``2.0000``)."""
    merged: dict[str, Decimal] = {}
    for sku, qty in pairs:
        merged[sku] = merged.get(sku, Decimal(0)) + Decimal(qty)
    return tuple(
        (sku, qty.quantize(Decimal(1)) if qty == qty.to_integral_value() else qty)
        for sku, qty in merged.items()
        if qty > 0
    )


@dataclass(frozen=True)
class RefundPlan:
    """Create an offline credit memo on a Magento order.

    ``shipping_amount`` is ``None`` for "all remaining shipping": the key is left out
    and Magento refunds what is left, tax included, in the right currency. A value
    sent is read in base currency (incl. tax on some stores), so only ``0`` is ever
    planned (partial refunds).
    """

    magento_entity_id: int
    items: tuple[
        tuple[int, Decimal], ...
    ]  # (order_item_id, qty) on the rows holding qty
    shipping_amount: Decimal | None
    return_to_stock_items: tuple[int, ...]
    comment: str
    expected_amount: Decimal  # Magento's own amount: items + shipping incl. tax
    whole_order: bool
    tiktok_cancel_id: str = ""  # the marker in ``comment`` that proves it was applied
    skus: SkuQuantities = field(default=(), compare=False)  # what the items are

    kind = "magento_refund"


@dataclass(frozen=True)
class MagentoCancelPlan:
    """Cancel a Magento order that has nothing invoiced (``orders/{id}/cancel``)."""

    magento_entity_id: int
    comment: str
    skus: SkuQuantities = field(default=(), compare=False)

    kind = "magento_cancel"


@dataclass(frozen=True)
class TikTokCancelPlan:
    """Seller-cancel a TikTok order: whole (no lines) or the listed line ids."""

    tiktok_order_id: str
    cancel_reason: str
    order_line_item_ids: tuple[str, ...] = ()
    skus: SkuQuantities = field(default=(), compare=False)

    kind = "tiktok_cancel"

    @property
    def whole_order(self) -> bool:
        return not self.order_line_item_ids


@dataclass(frozen=True)
class ApproveRequestPlan:
    """Approve the buyer's pending cancellation request."""

    tiktok_order_id: str
    tiktok_cancel_id: str
    skus: SkuQuantities = field(default=(), compare=False)

    kind = "tiktok_approve"


@dataclass(frozen=True)
class HoldPlan:
    """Put a Magento order on hold while the buyer's cancellation request is pending.

    ``comment`` carries ``hold_marker(tiktok_cancel_id)``: it is posted before the hold,
    so an order found held with it was held by cancelsync (after a crash, a lost reply
    or a lost database), and only such an order is ever released.
    """

    magento_entity_id: int
    tiktok_cancel_id: str
    comment: str
    # The earlier request whose hold (still on, its release not done) this request
    # takes over: only the comment is posted, the order is already held.
    carry_over_from: str = ""

    kind = "magento_hold"


@dataclass(frozen=True)
class ReleasePlan:
    """Take cancelsync's own hold off a Magento order (``orders/{id}/unhold``)."""

    magento_entity_id: int
    tiktok_cancel_id: str
    comment: str

    kind = "magento_unhold"


Plan = (
    RefundPlan
    | MagentoCancelPlan
    | TikTokCancelPlan
    | ApproveRequestPlan
    | HoldPlan
    | ReleasePlan
)


@dataclass(frozen=True)
class Apply:
    plan: Plan
    note: str = ""
    outcome = "apply"


class Code(StrEnum):
    """Why a decision was taken, as data (the ``reason`` text is for people).

    Stored in the ledger (``reason_code``) so ``status`` can count e.g. cancellations of
    orders that were never imported, without parsing messages.
    """

    ECHO = "echo"  # caused by cancelsync itself (the other direction's write)
    NOT_COUNTED = "not_counted"  # not a cancellation this store mirrors
    NOT_IMPORTED = "not_imported"  # no Magento order carries the TikTok order id
    NOT_TIKTOK = "not_tiktok"  # the Magento order did not come from TikTok
    AMBIGUOUS_LINK = "ambiguous_link"  # several Magento orders carry the TikTok id
    LINK_CONFLICT = (
        "link_conflict"  # the Magento order is linked to another TikTok order
    )
    ORDER_GONE = "order_gone"  # the linked order no longer exists
    ALREADY_DONE = "already_done"  # the effect is already there
    BLOCKED = "blocked"  # the order's state forbids the write (hold, review, ...)
    SHIPPED = "shipped"  # TikTok will only take a return/refund now
    PARTIAL = "partial"  # a partial refund left alone (partial_refunds = "report")
    MISMATCH = "mismatch"  # the two platforms disagree on lines, quantities or money
    REASON = "reason"  # no usable cancel reason key
    UNREADABLE = "unreadable"  # a payload cancelsync cannot read
    SUPERSEDED = "superseded"  # an attention item a later action made moot
    HELD = "held"  # the order carries cancelsync's hold (found by its marker)
    NOT_OUR_HOLD = "not_our_hold"  # on hold by someone else: never released by us
    OTHER = "other"


@dataclass(frozen=True)
class Done:
    reason: str
    code: Code = Code.ALREADY_DONE
    outcome = "done"


@dataclass(frozen=True)
class Skip:
    reason: str
    code: Code = Code.OTHER
    outcome = "skipped"


@dataclass(frozen=True)
class Attention:
    reason: str
    code: Code = Code.OTHER
    outcome = "needs_attention"


@dataclass(frozen=True)
class Defer:
    reason: str
    code: Code = Code.OTHER
    outcome = "defer"


Decision = Apply | Done | Skip | Attention | Defer

MARKER_PREFIX = "[cancelsync:"


def marker(tiktok_cancel_id: str) -> str:
    """The tag our Magento comments carry, recognised later (echo guard, reconciliation)."""
    return f"{MARKER_PREFIX}{tiktok_cancel_id}]"


def hold_marker(tiktok_cancel_id: str) -> str:
    """The tag of the order comment cancelsync posts when it holds an order."""
    return f"{MARKER_PREFIX}hold:{tiktok_cancel_id}]"


def release_marker(tiktok_cancel_id: str) -> str:
    """The tag of the order comment cancelsync posts when it releases its hold."""
    return f"{MARKER_PREFIX}release:{tiktok_cancel_id}]"


def has_marker(
    comments: tuple[str, ...] | list[str], tiktok_cancel_id: str | None = None
) -> bool:
    """Whether any comment carries our marker (for one cancellation, or any)."""
    needle = marker(tiktok_cancel_id) if tiktok_cancel_id else MARKER_PREFIX
    return any(needle in (c or "") for c in comments)
