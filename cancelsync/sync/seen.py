"""What an event saw on both platforms, kept in its ledger payload for ``explain``.

The directions already read these facts to decide; this module copies the few a person
asks about (who cancelled, why, which SKUs and how many, the amounts on both sides) into a
small JSON ``seen`` dict of the event's payload. Money is a string (never a float), times
are stored like every other timestamp, lines are counted per SKU (TikTok has one line per
unit), and at most ``MAX_SKUS`` SKUs are kept so a huge order cannot bloat a ledger row.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from cancelsync.models import (
    MagentoCreditMemo,
    MagentoOrder,
    TikTokCancellation,
    TikTokOrder,
)
from cancelsync.store.db import iso
from cancelsync.sync.engine import Event

MAX_SKUS = 20


def cancellation(c: TikTokCancellation) -> dict[str, Any]:
    """A TikTok cancellation record: its initiator, reason, lines and refund."""
    return _clean({
        "initiator": c.role,
        "cancel_type": c.cancel_type,
        "cancel_reason": c.cancel_reason,
        "cancelled_at": _time(c.create_time),
        "lines": _per_sku((line.seller_sku or line.sku_id, 1) for line in c.lines),
        "tiktok_refund": _money(c.refund_total),
        "currency": c.currency,
    })  # fmt: skip


def tiktok_order(order: TikTokOrder | None) -> dict[str, Any]:
    """A TikTok order's detail: its total and currency, and (when no cancellation record
    listed lines) which of its lines are cancelled."""
    if order is None:
        return {}
    cancelled = [line for line in order.lines if line.cancelled]
    return _clean({
        "tiktok_status": order.status,
        "tiktok_order_total": _money(order.total_amount),
        "currency": order.currency,
        "tiktok_cancelled_lines": _per_sku(
            (line.seller_sku or line.sku_id, 1) for line in cancelled
        ),
    })  # fmt: skip


def magento_order(order: MagentoOrder) -> dict[str, Any]:
    """A Magento order as read before the write: its totals (order currency)."""
    return _clean({
        "magento_state": order.state,
        "magento_grand_total": _money(order.grand_total),
        "magento_total_refunded": _money(order.total_refunded),
    })  # fmt: skip


def credit_memo(memo: MagentoCreditMemo, order: MagentoOrder) -> dict[str, Any]:
    """A Magento credit memo (the merchant's refund) and its order's totals."""
    return _clean({
        "initiator": "MAGENTO",
        "refunded_at": _time(memo.created_at),
        "lines": _per_sku((item.sku, item.qty) for item in memo.items),
        "magento_creditmemo_total": _money(memo.grand_total),
        **magento_order(order),
    })  # fmt: skip


def add(event: Event, *facts: dict[str, Any]) -> Event:
    """The event with more seen facts merged into its payload's ``seen``."""
    merged = dict(event.payload.get("seen") or {})
    for more in facts:
        merged.update(more)
    return replace(event, payload={**event.payload, "seen": merged})


def _per_sku(lines: Iterable[tuple[str, Decimal | int]]) -> dict[str, int | str]:
    """Quantity per SKU (a whole number as an int, else its decimal text)."""
    counts: dict[str, Decimal] = {}
    for sku, qty in lines:
        counts[sku or "?"] = counts.get(sku or "?", Decimal(0)) + qty
    biggest = sorted(counts.items(), key=lambda kv: -kv[1])[:MAX_SKUS]
    return {sku: int(qty) if qty == int(qty) else str(qty) for sku, qty in biggest}


def _money(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _time(value: datetime | None) -> str | None:
    return None if value is None else iso(value)


def _clean(data: dict[str, Any]) -> dict[str, Any]:
    """Leave out what was not there (empty strings, no lines, unknown amounts)."""
    return {k: v for k, v in data.items() if v not in (None, "", {})}
