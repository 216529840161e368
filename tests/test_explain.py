"""`cancelsync explain` on stored rows: what each event saw, decided and did, with ISO
times and "ago"; rows from before the ``seen`` payload still explain."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

from cancelsync.explain import gather, render
from cancelsync.store import Link, Store

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
SCOPE = "shop:7495"


def _explain(store: Store, ref: str, now: datetime) -> str:
    story = gather(store, ref)
    assert story is not None
    out = io.StringIO()
    render(story, out, now)
    return out.getvalue()


def _row(store: Store, key: str, payload: dict[str, Any], **ids: Any) -> int:
    entry = store.ledger.begin(
        key, scope=SCOPE, store_name="us-main", direction="tiktok_to_magento",
        action="magento_refund", now=T0, state="done", payload=payload,
        tiktok_order_id="576", magento_entity_id=42, magento_increment_id="000000042",
        **ids,
    )  # fmt: skip
    return entry.action_id


def test_explain_without_a_record_is_none(store: Store) -> None:
    """Nothing stored for the order: gather says so (the command exits 1)."""
    assert gather(store, "576") is None


def test_an_old_row_without_seen_still_explains(store: Store) -> None:
    """A row stored before ``seen`` shows the initiator it kept and says the rest was
    not recorded; times are ISO UTC with "ago"."""
    store.links.save(Link("576", SCOPE, 42, "000000042", 1), T0)
    _row(store, "refund:7495:c1", {"tiktok_cancel_id": "c1", "tiktok_order_id": "576",
                                   "role": "BUYER", "cancel_status": "X"},
         tiktok_cancel_id="c1")  # fmt: skip
    store.timeline.add(at=T0, scope=SCOPE, kind="done", message="refunded",
                       tiktok_order_id="576", action_id=1)  # fmt: skip

    text = _explain(store, "000000042", T0 + timedelta(minutes=3))

    assert "TikTok order 576 ↔ Magento order #000000042 (entity 42)" in text
    assert (
        "  #1 TikTok cancellation c1, 2026-11-01 12:00:00 UTC (3 minutes ago)" in text
    )
    assert "    cancelled by: the buyer\n" in text
    assert "lines and amounts not recorded" in text
    assert "  2026-11-01 12:00:00 UTC (3 minutes ago)  done       [#1] refunded" in text


def test_seen_facts_and_plan_are_rendered(store: Store) -> None:
    """A row with ``seen`` shows who, why, what and how much on both sides, and its plan."""
    seen = {
        "initiator": "SELLER", "cancel_type": "CANCEL",
        "cancel_reason": "seller_cancel_reason_out_of_stock",
        "cancelled_at": "2026-11-01T10:00:00+00:00", "lines": {"SKU-1": 2},
        "tiktok_refund": "20.00", "currency": "GBP", "tiktok_order_total": "30.00",
        "magento_grand_total": "30", "magento_total_refunded": "0",
        "magento_state": "processing",
    }  # fmt: skip
    plan = {"kind": "magento_refund", "whole_order": False, "expected_amount": "20.00"}
    _row(store, "refund:7495:c2", {"tiktok_cancel_id": "c2", "seen": seen, "plan": plan},
         tiktok_cancel_id="c2")  # fmt: skip

    text = _explain(store, "576", T0)

    assert "  #1 TikTok cancellation c2, 2026-11-01 10:00:00 UTC (2 hours ago)" in text
    assert (
        "    cancelled by: the seller (TikTok Seller Center) (CANCEL); TikTok reason: "
        "seller_cancel_reason_out_of_stock" in text
    )
    assert "    lines: 2 x SKU-1\n" in text
    assert "    TikTok: order total 30.00 GBP, refund 20.00 GBP\n" in text
    assert (
        "    Magento #000000042: grand total 30, refunded 0 when seen (processing)"
        in text
    )
    assert "    plan: refund in Magento (some lines), 20.00 expected" in text
    assert "not recorded" not in text
