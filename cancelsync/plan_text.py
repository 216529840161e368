"""A dry run's plan as sentences: orders by ``#increment`` and TikTok id, goods by SKU.

``run --once --dry-run`` collects one dict per decision (``CycleReport.planned``): a plan
(``decision`` ``apply``, its ``_plan_summary`` under ``plan``) or a decision that needs no
write (``reason``), each with the event's order ids. ``describe`` turns one into a line
such as ``would refund Magento order #000000123 (TikTok 5770…): 2 x SKU-A, offline, return
to stock`` (with a multiplication sign); ``in_reading_order`` puts the writes first, then
what needs a person.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from cancelsync.store.ledger import RESOLVED_CODE

TIMES = "\N{MULTIPLICATION SIGN}"
# Writes first, then what needs a person, then what is left alone.
_RANK = {"apply": 0, "needs_attention": 1, "skipped": 2, "done": 3}


# Each action kind (a ledger row's ``action``, a plan's ``kind``) in words: what it sets
# out to do, and what it did once done. Shown by ``explain`` and the order center.
ACTION_LABELS: dict[str, tuple[str, str]] = {
    "magento_refund": ("refund in Magento", "refunded in Magento"),
    "magento_cancel": ("cancel the Magento order", "Magento order cancelled"),
    "tiktok_cancel": ("cancel on TikTok", "cancelled on TikTok"),
    "tiktok_approve": (
        "approve the buyer's request on TikTok",
        "buyer's request approved on TikTok",
    ),
    "magento_hold": (
        "hold in Magento while the buyer's request is pending",
        "held in Magento while the buyer's request is pending",
    ),
    "magento_unhold": ("release cancelsync's hold in Magento", "hold released"),
}


def action_label(action: str, *, done: bool = False) -> str:
    """An action kind in words: ``refund in Magento``, or ``refunded in Magento`` when
    ``done`` (it happened); an unknown kind with its underscores as spaces."""
    labels = ACTION_LABELS.get(action)
    if labels is None:
        return action.replace("_", " ")
    return labels[1] if done else labels[0]


_NOT_DONE = {
    "skipped": "not done (skipped)",
    "needs_attention": "not done, needs attention",
    "failed": "not done yet (failed; tried again)",
    "pending": "not done yet",
}


def row_label(action: str, state: str, reason_code: str | None = None) -> str:
    """A ledger row's action in words: what it did when it is ``done`` (and was not
    closed by hand, ``resolve``), else what it set out to do and that it was not done
    (a skipped echo must not read as a cancel)."""
    if state == "done":
        if reason_code == RESOLVED_CODE:
            return f"{action_label(action)}: closed by hand"
        return action_label(action, done=True)
    return f"{action_label(action)}: {_NOT_DONE.get(state, state)}"


def in_reading_order(planned: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The planned items, writes first (each group in the order decided)."""
    return sorted(planned, key=lambda item: _RANK.get(str(item.get("decision")), 4))


_COUNTED = {
    "seen": "seen",
    "would_apply": "to write",
    "needs_attention": "would need attention",
    "skipped": "would skip",
    "done": "nothing to do",
}


def counts_text(counts: Mapping[str, int]) -> str:
    """A dry run's counts in words: ``3 seen, 2 to write, 1 would need attention``."""
    known = [f"{counts[k]} {label}" for k, label in _COUNTED.items() if counts.get(k)]
    other = [
        f"{n} {k.replace('_', ' ')}"
        for k, n in sorted(counts.items())
        if k not in _COUNTED and n
    ]
    return ", ".join(known + other) or "nothing new"


def describe(item: Mapping[str, Any]) -> str:
    """One planned decision as a sentence a merchant can check against the orders."""
    decision = item.get("decision")
    if decision == "apply":
        return _describe_plan(item, item.get("plan") or {})
    reason = item.get("reason") or "(no reason given)"
    lead = {
        "needs_attention": "would need attention",
        "skipped": "would skip",
        "done": "nothing to do",
    }.get(str(decision), f"would {decision}")
    return f"{lead}: {order_ref(item)} — {reason}"


def order_ref(ids: Mapping[str, Any], *, first: str = "magento") -> str:
    """``Magento order #000000123 (TikTok 5770…)``, or whichever side is known.

    ``first``: the platform named first when both are known (the one acted on).
    """
    increment = ids.get("magento_increment_id")
    tiktok = ids.get("tiktok_order_id")
    magento = f"Magento order #{increment}" if increment else None
    if magento and tiktok:
        if first == "tiktok":
            return f"TikTok order {tiktok} (Magento #{increment})"
        return f"{magento} (TikTok {tiktok})"
    if magento or tiktok:
        return magento or f"TikTok order {tiktok}"
    if ids.get("magento_creditmemo_id") is not None:
        return f"Magento credit memo {ids['magento_creditmemo_id']}"
    if ids.get("tiktok_cancel_id"):
        return f"TikTok cancellation {ids['tiktok_cancel_id']}"
    return str(ids.get("key") or "an unknown order")


def goods(plan: Mapping[str, Any]) -> str:
    """``2 x SKU-A, 1 x SKU-B`` (a multiplication sign, not x) from a plan summary's
    ``skus`` (``[[sku, qty], ...]``)."""
    pairs = plan.get("skus") or []
    return ", ".join(f"{qty} {TIMES} {sku}" for sku, qty in pairs)


def _describe_plan(item: Mapping[str, Any], plan: Mapping[str, Any]) -> str:
    kind = plan.get("kind") or item.get("action")
    what = goods(plan)
    if kind == "magento_refund":
        if not what:
            what = f"{len(plan.get('items') or [])} item row(s)"
        if plan.get("shipping_amount") in (None, "None"):
            what += " and the remaining shipping"
        amount = plan.get("expected_amount")
        stock = (
            "return to stock"
            if plan.get("return_to_stock_items")
            else "not returned to stock"
        )
        money = f" ({amount})" if amount not in (None, "None") else ""
        return (
            f"would refund {order_ref(item)}: {what}{money}, offline credit memo, "
            f"{stock}"
        )
    if kind == "magento_cancel":
        return (
            f"would cancel {order_ref(item)} (nothing invoiced, so no credit memo): "
            f"{what or 'the whole order'}"
        )
    if kind == "tiktok_cancel":
        reason = f" (reason: {plan.get('cancel_reason')})"
        ref = order_ref(item, first="tiktok")
        if plan.get("order_line_item_ids"):
            return f"would cancel {what} of {ref}, not the whole order{reason}"
        return f"would cancel {ref}: {what or 'the whole order'}{reason}"
    if kind == "tiktok_approve":
        ref = order_ref(item, first="tiktok")
        return (
            f"would approve the buyer's cancellation request of {ref}: "
            f"{what or 'the whole order'}"
        )
    if kind == "magento_hold":
        return f"would put {order_ref(item)} on hold while the buyer's request is open"
    if kind == "magento_unhold":
        return f"would release cancelsync's hold on {order_ref(item)}"
    return f"would {str(kind).replace('_', ' ')}: {order_ref(item)}"
