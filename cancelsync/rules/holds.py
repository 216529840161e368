"""Holds: a pending buyer cancellation request keeps the Magento order from shipping.

Pure functions (no I/O, no clock). With ``tiktok_cancel_to_magento_refund.hold_on_request``
on, a buyer's cancellation request that is still **pending** on TikTok puts the linked
Magento order on hold (``POST /V1/orders/{id}/hold``), so the warehouse does not ship an
order that may be cancelled. When the request leaves pending the hold is taken off again:

- rejected or withdrawn (``CANCELLATION_REQUEST_CANCEL``/``…_CANCELLED``): released;
- accepted (``…_SUCCESS``/``…_COMPLETE``): released first, because Magento refuses a credit
  memo on a held order (``canCreditmemo()`` is false while ``holded``, magento-rest-api.md
  §6), then refunded as usual.

Only holds cancelsync made are ever released: the ledger remembers them, and the order
comment posted with each hold carries ``hold_marker`` (so a lost database still knows). An
order the merchant held is left alone. An order already shipped in Magento is not held: a
person must answer the request (it needs attention).
"""

from __future__ import annotations

import re

from cancelsync.models import MagentoOrder, TikTokCancellation
from cancelsync.rules.decisions import (
    Apply,
    Attention,
    Code,
    Decision,
    Done,
    HoldPlan,
    ReleasePlan,
    Skip,
    hold_marker,
    release_marker,
)

BUYER_REQUEST = "BUYER_CANCEL"
_HOLD_MARKER = re.compile(re.escape(hold_marker("")[:-1]) + r"([^\]\s]+)\]")


def is_buyer_request(c: TikTokCancellation) -> bool:
    """A buyer's request that waits for the seller (not an instant buyer cancel)."""
    return c.cancel_type == BUYER_REQUEST and c.pending


def answered(c: TikTokCancellation) -> str:
    """How a request that left pending ended, in words."""
    if c.accepted:
        return "accepted"
    if c.pending:
        return "still pending"
    return "rejected or withdrawn"


def carries_our_hold(order: MagentoOrder, tiktok_cancel_id: str) -> bool:
    """The order is on hold and its comments carry cancelsync's hold for this request."""
    return order.state == "holded" and any(
        hold_marker(tiktok_cancel_id) in (c or "") for c in order.comments
    )


def marked_holds(order: MagentoOrder) -> list[str]:
    """The requests whose hold marker the order's comments carry without a release
    marker (cancelsync held the order for them and has not released it)."""
    text = " ".join(c or "" for c in order.comments)
    held = dict.fromkeys(_HOLD_MARKER.findall(text))
    return [cid for cid in held if release_marker(cid) not in text]


def shipped(order: MagentoOrder) -> bool:
    """Anything of the order has left the warehouse (a shipment exists)."""
    return order.state == "complete" or any(it.qty_shipped > 0 for it in order.items)


def decide_hold(c: TikTokCancellation, order: MagentoOrder) -> Decision:
    """What to do with the linked Magento order while the buyer's request is pending."""
    number = order.magento_increment_id
    if carries_our_hold(order, c.cancel_id):
        return Done(
            f"Magento order #{number} already carries cancelsync's hold for this request "
            f"({hold_marker(c.cancel_id)})",
            Code.HELD,
        )
    if order.state == "holded":
        return Skip(
            f"Magento order #{number} is already on hold (not by cancelsync); left as it "
            "is, and cancelsync will never release it",
            Code.NOT_OUR_HOLD,
        )
    if order.state in ("canceled", "closed"):
        return Skip(f"Magento order #{number} is already {order.state}", Code.OTHER)
    if shipped(order):
        return Attention(
            f"the buyer asked to cancel TikTok order {c.tiktok_order_id}, which you have "
            f"shipped (Magento order #{number}): answer the request in Seller Center "
            "(reject it, or accept it and handle the return)",
            Code.SHIPPED,
        )
    if order.state == "payment_review":
        return Attention(
            f"the buyer asked to cancel TikTok order {c.tiktok_order_id}, but Magento "
            f"order #{number} is in payment review and cannot be put on hold; keep it "
            "from shipping until the request is answered",
            Code.BLOCKED,
        )
    reason = f" ({c.cancel_reason})" if c.cancel_reason else ""
    comment = (
        f"{hold_marker(c.cancel_id)} On hold: the buyer asked to cancel TikTok order "
        f"{c.tiktok_order_id}{reason}; do not ship. cancelsync releases the hold when "
        "the request is rejected or withdrawn, and releases then refunds the order when "
        "it is accepted."
    )
    return Apply(
        HoldPlan(order.magento_entity_id, c.cancel_id, comment),
        note=f"buyer's cancellation request pending: hold Magento order #{number}",
    )


def decide_unheld(c: TikTokCancellation, why: str, code: Code) -> Decision:
    """A hold row left open (re-opened after a late import, or failed) for a request
    whose order cannot be held, ``why``: a person keeps it from shipping while the
    request is pending; an answered one needs nothing."""
    if not is_buyer_request(c):
        return Skip(
            "the request was answered before cancelsync had the order on hold; it is "
            "not on hold by cancelsync",
            Code.OTHER,
        )
    return Attention(
        f"the buyer asked to cancel TikTok order {c.tiktok_order_id}, but cancelsync "
        f"cannot hold it: {why}; keep it from shipping until the request is answered",
        code,
    )


def decide_carry_over(
    c: TikTokCancellation, order: MagentoOrder, *, earlier: str
) -> Decision:
    """A new pending request on an order cancelsync still holds for ``earlier`` (a
    request of the same TikTok order whose release has not gone through): the hold
    carries over. Only the comment with this request's marker is posted, so that a lost
    database still knows the hold is cancelsync's, and for which request."""
    number = order.magento_increment_id
    comment = (
        f"{hold_marker(c.cancel_id)} Still on hold: the buyer asked again to cancel "
        f"TikTok order {c.tiktok_order_id}; the hold placed for request {earlier} "
        "carries over to this request."
    )
    return Apply(
        HoldPlan(
            order.magento_entity_id, c.cancel_id, comment, carry_over_from=earlier
        ),
        note=f"buyer's new request pending: Magento order #{number} stays on hold",
    )


def decide_release(
    c: TikTokCancellation, order: MagentoOrder, *, held_for: str
) -> Decision:
    """Take cancelsync's hold (made for request ``held_for``) off the order, now that
    request ``c`` of the same TikTok order is no longer pending."""
    number = order.magento_increment_id
    if order.state != "holded":
        return Done(
            f"Magento order #{number} is no longer on hold (released in Magento); "
            "nothing to release",
        )
    comment = (
        f"{release_marker(held_for)} Hold released: the buyer's cancellation request "
        f"for TikTok order {c.tiktok_order_id} was {answered(c)}."
    )
    return Apply(
        ReleasePlan(order.magento_entity_id, held_for, comment),
        note=f"buyer's request {answered(c)}: release Magento order #{number}",
    )
