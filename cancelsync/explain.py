"""``cancelsync explain ORDER``: gather one order's story from the store, then render it.

``gather`` reads the link, the ledger rows and the timeline of a TikTok order id or Magento
increment id, and from each row's payload what its event **saw** (the ``seen`` dict the
directions keep, ``cancelsync.sync.seen``): who cancelled, TikTok's reason, the SKUs and
quantities, the amounts on both sides. ``render`` prints that, then what was decided and
done, with times as ISO UTC plus "x minutes ago". Rows recorded before ``seen`` existed
still explain: what they kept (the initiator) is shown, the rest is said to be unknown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TextIO

from cancelsync.plan_text import row_label
from cancelsync.readable import magento_order, when
from cancelsync.rules.decisions import Code
from cancelsync.store import LedgerEntry, Link, Store
from cancelsync.store.history import TimelineEvent

INITIATORS = {
    "BUYER": "the buyer",
    "SELLER": "the seller (TikTok Seller Center)",
    "SYSTEM": "TikTok (system, e.g. an unpaid order timed out)",
    "OPERATOR": "a TikTok operator",
    "MAGENTO": "the merchant, with a Magento credit memo",
    "CANCELSYNC": "cancelsync itself (its own write on the other platform: not mirrored)",
}


@dataclass(frozen=True)
class Seen:
    """What one event (one ledger row) saw, as stored in its payload."""

    action_id: int
    direction: str
    what: str  # "TikTok cancellation <id>" / "Magento credit memo <id>"
    at: str | None  # when it happened on the platform (stored ISO), else when decided
    magento_increment_id: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OrderStory:
    order_ref: str
    link: Link | None
    entries: list[LedgerEntry]
    events: list[TimelineEvent]
    seen: list[Seen]


def order_history(
    store: Store, order_ref: str
) -> tuple[Link | None, list[LedgerEntry], list[TimelineEvent]]:
    """The link, ledger rows and timeline of a TikTok order id or Magento increment id."""
    link = store.links.find_link(order_ref) or store.links.find_by_increment(order_ref)
    tiktok_id = link.tiktok_order_id if link else order_ref
    entries = store.ledger.for_order(tiktok_id)
    if link and link.magento_increment_id:
        known = {e.action_id for e in entries}
        entries += [
            e for e in store.ledger.for_order(link.magento_increment_id)
            if e.action_id not in known
        ]  # fmt: skip
    events = store.timeline.for_order(
        tiktok_id, link.magento_entity_id if link else None, order_ref
    )
    return link, entries, events


def gather(store: Store, order_ref: str) -> OrderStory | None:
    """The order's story, or ``None`` when nothing is recorded for it."""
    link, entries, events = order_history(store, order_ref)
    if link is None and not entries and not events:
        return None
    return OrderStory(order_ref, link, entries, events, [_seen(e) for e in entries])


def _seen(entry: LedgerEntry) -> Seen:
    payload = entry.payload_dict()
    facts: dict[str, Any] = dict(payload.get("seen") or {})
    if "initiator" not in facts and payload.get("role"):
        facts["initiator"] = payload["role"]  # rows from before ``seen``
    if entry.magento_creditmemo_id is not None and entry.tiktok_cancel_id is None:
        what = f"Magento credit memo {entry.magento_creditmemo_id}"
        at = facts.get("refunded_at")
    elif (entry.tiktok_cancel_id or "").startswith("order-"):
        what = "TikTok order shown cancelled (no cancellation record)"
        at = facts.get("cancelled_at")
    else:
        what = f"TikTok cancellation {entry.tiktok_cancel_id or '-'}"
        at = facts.get("cancelled_at")
    if entry.reason_code == Code.ECHO:
        facts["initiator"] = "CANCELSYNC"
    return Seen(entry.action_id, entry.direction, what, at or entry.created_at,
                entry.magento_increment_id, facts)  # fmt: skip


# --------------------------------------------------------------------------- rendering


def render(story: OrderStory, out: TextIO, now: datetime) -> None:
    """The text ``cancelsync explain`` prints; times relative to ``now``."""
    link = story.link
    if link:
        print(
            f"TikTok order {link.tiktok_order_id} ↔ Magento order "
            f"{magento_order(link.magento_increment_id)} (entity {link.magento_entity_id})",
            file=out,
        )
    print("seen:", file=out)
    for seen in story.seen:
        increment = seen.magento_increment_id or (
            link.magento_increment_id if link else None
        )
        _render_seen(seen, increment, out, now)
    print("timeline:", file=out)
    for ev in story.events:
        action = f" [#{ev.action_id}]" if ev.action_id else ""
        print(f"  {when(ev.at, now)}  {ev.kind:<10}{action} {ev.message}", file=out)
    print("actions:", file=out)
    for e in story.entries:
        remote = f" remote={e.remote_id}" if e.remote_id else ""
        print(
            f"  #{e.action_id} {e.action} ({e.direction}) {e.state}{remote} "
            f"attempts={e.attempts} reason={e.reason or '-'}"
            + (f" error={e.last_error}" if e.last_error else "")
            + f" — {when(e.updated_at, now)}",
            file=out,
        )
        print(f"    what: {row_label(e.action, e.state, e.reason_code)}", file=out)
        plan = e.payload_dict().get("plan")
        if plan:
            print(f"    plan: {_plan_text(plan)}", file=out)


def _render_seen(seen: Seen, increment: str | None, out: TextIO, now: datetime) -> None:
    f = seen.facts
    print(f"  #{seen.action_id} {seen.what}, {when(seen.at, now)}", file=out)
    by = f.get("initiator")
    if by:
        kind = f" ({f['cancel_type']})" if f.get("cancel_type") else ""
        reason = (
            f"; TikTok reason: {f['cancel_reason']}" if f.get("cancel_reason") else ""
        )
        print(f"    cancelled by: {INITIATORS.get(by, by)}{kind}{reason}", file=out)
    lines = f.get("lines") or f.get("tiktok_cancelled_lines")
    if lines:
        label = "lines" if f.get("lines") else "cancelled lines on TikTok"
        print(f"    {label}: {_lines_text(lines)}", file=out)
    tiktok = _tiktok_amounts(f)
    if tiktok:
        print(f"    TikTok: {tiktok}", file=out)
    magento = _magento_amounts(f)
    if magento:
        print(f"    Magento {magento_order(increment)}: {magento}", file=out)
    if not f or set(f) == {"initiator"}:
        print(
            "    (lines and amounts not recorded: this action was decided before "
            "cancelsync kept what it saw)",
            file=out,
        )


def _lines_text(lines: dict[str, Any]) -> str:
    return ", ".join(f"{qty} x {sku}" for sku, qty in lines.items())


def _tiktok_amounts(f: dict[str, Any]) -> str:
    currency = f" {f['currency']}" if f.get("currency") else ""
    parts = []
    if f.get("tiktok_order_total"):
        parts.append(f"order total {f['tiktok_order_total']}{currency}")
    if f.get("tiktok_refund"):
        parts.append(f"refund {f['tiktok_refund']}{currency}")
    text = ", ".join(parts)
    if f.get("tiktok_status"):
        text += ("; " if text else "") + f"order {f['tiktok_status']}"
    return text


def _magento_amounts(f: dict[str, Any]) -> str:
    parts = []
    if f.get("magento_creditmemo_total"):
        parts.append(f"credit memo {f['magento_creditmemo_total']}")
    if f.get("magento_grand_total"):
        parts.append(f"grand total {f['magento_grand_total']}")
    if f.get("magento_total_refunded"):
        parts.append(f"refunded {f['magento_total_refunded']} when seen")
    text = ", ".join(parts)
    if f.get("magento_state"):
        text += f" ({f['magento_state']})"
    return text


def _plan_text(plan: dict[str, Any]) -> str:
    """What the decision meant to write, from the plan summary kept in the payload."""
    kind = str(plan.get("kind", "?"))
    if kind == "magento_refund":
        scope = "whole order" if plan.get("whole_order") else "some lines"
        amount = plan.get("expected_amount")
        return f"refund in Magento ({scope})" + (
            f", {amount} expected" if amount else ""
        )
    if kind == "tiktok_cancel":
        lines = plan.get("order_line_item_ids") or []
        scope = f"{len(lines)} line(s)" if lines else "whole order"
        return (
            f"cancel on TikTok ({scope}) with reason {plan.get('cancel_reason', '?')}"
        )
    if kind == "magento_cancel":
        return "cancel the Magento order (nothing invoiced, so nothing to refund)"
    if kind == "magento_hold":
        return "hold the Magento order while the buyer's cancel request is pending"
    if kind == "magento_unhold":
        return "release the Magento order's hold"
    if kind == "tiktok_approve":
        return f"approve the buyer's cancel request {plan.get('tiktok_cancel_id', '')}"
    return kind
