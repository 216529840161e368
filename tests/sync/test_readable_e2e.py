"""`status` and `explain` end to end, as a person reads them: ISO times with "ago", the
market before the first run, and explain's seen facts (who cancelled, TikTok's reason, the
SKUs and quantities, the amounts on both sides) next to what was decided and done."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

from .conftest import Harness

ISO_AGO = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \((just now|\d+ seconds? ago)\)"


def _lines_of(harness: Harness, tiktok_order_id: str, sku: str) -> list[str]:
    order = harness.sb.tiktok.order(tiktok_order_id)
    return [line["id"] for line in order["line_items"] if line["seller_sku"] == sku]


def test_status_before_and_after_the_first_run(harness: Harness) -> None:
    """Before any run the market is "learned on the first run" and auth "not yet used";
    after one, the market is the shop's region and every time is ISO with "ago"."""
    harness.sb.add_store("us-main")
    placed = harness.sb.place_order([{"sku": "TEE", "qty": 1, "price": 5.0}])
    harness.sb.tiktok.buyer_cancel(placed.tiktok_order_id)

    rc, before = harness.run("status")
    assert rc == 0
    assert "market: learned on the first run" in before
    assert "market: None" not in before
    assert "auth: not yet used — " in before
    assert "last cycle: never" in before

    assert harness.run("run", "--once")[0] == 0
    rc, after = harness.run("status")

    assert rc == 0
    assert "market: US (the TikTok shop's region)" in after
    assert re.search(rf"last cycle: {ISO_AGO} ok", after), after
    assert re.search(rf"cursor tiktok\.cancellations: read up to {ISO_AGO}", after)
    assert not re.search(r"\b1\d{9}\b", after), "a raw Unix time in the text"
    (s,) = harness.status()["stores"]
    epoch = s["cursors"]["tiktok.cancellations"]
    assert isinstance(epoch, int)  # JSON consumers keep their epochs
    assert s["cursor_times"]["tiktok.cancellations"] == datetime.fromtimestamp(
        epoch, UTC
    ).strftime("%Y-%m-%d %H:%M:%S UTC")
    assert (s["market"], s["market_source"]) == ("US", "shop")
    assert json.loads(json.dumps(s)) == s


def test_explain_shows_a_buyer_cancellation_as_seen_decided_and_done(
    harness: Harness,
) -> None:
    """By TikTok id or #increment: the buyer, TikTok's reason, the SKUs and quantities,
    TikTok's and Magento's amounts, the plan, and ISO times with "ago"."""
    harness.sb.add_store("us-main")
    placed = harness.sb.place_order(
        [
            {"sku": "TEE-RED-M", "qty": 2, "price": 10.0},
            {"sku": "CAP", "qty": 1, "price": 4.0},
        ],
        shipping_fee=5.0,
    )
    harness.sb.tiktok.buyer_cancel(
        placed.tiktok_order_id,
        reason="ecom_order_to_ship_canceled_reason_no_longer_needed",
    )
    assert harness.run("run", "--once")[0] == 0

    for ref in (placed.tiktok_order_id, placed.magento_increment_id):
        rc, out = harness.run("explain", ref)
        assert rc == 0
        inc = f"#{placed.magento_increment_id}"
        assert f"↔ Magento order {inc}" in out
        assert re.search(rf"  #1 TikTok cancellation \d+, {ISO_AGO}\n", out), out
        assert (
            "    cancelled by: the buyer (BUYER_CANCEL); TikTok reason: "
            "ecom_order_to_ship_canceled_reason_no_longer_needed\n" in out
        )
        assert "    lines: 1 x CAP, 2 x TEE-RED-M\n" in out
        assert (
            "    TikTok: order total 29.00 USD, refund 29.00 USD; order CANCELLED\n"
            in out
        )
        assert (
            f"    Magento {inc}: grand total 29, refunded 0 when seen (processing)\n"
            in out
        )
        assert "    plan: refund in Magento (whole order), 29.00 expected\n" in out
        assert re.search(rf"  {ISO_AGO}  done       \[#1\] magento_refund done", out)
        assert not re.search(r"\d{4}-\d\d-\d\dT\d\d:", out), "a raw stored timestamp"


def test_explain_shows_the_cancelled_lines_of_a_partial_cancel(
    harness: Harness,
) -> None:
    """A partial cancel lists only the SKU and quantity TikTok cancelled."""
    harness.sb.add_store("us-main")
    placed = harness.sb.place_order(
        [{"sku": "A", "qty": 3, "price": 5.0}, {"sku": "B", "qty": 1, "price": 7.0}]
    )
    harness.sb.tiktok.partial_cancel(
        placed.tiktok_order_id, _lines_of(harness, placed.tiktok_order_id, "A")[:2]
    )
    assert harness.run("run", "--once")[0] == 0

    out = harness.run("explain", placed.tiktok_order_id)[1]
    assert "    lines: 2 x A\n" in out
    assert " x B" not in out
    assert "plan: refund in Magento (some lines)" in out


def test_explain_shows_a_system_cancellation_as_tiktok(harness: Harness) -> None:
    """TikTok's own cancellation (role SYSTEM) is said to be TikTok's, with its reason."""
    harness.sb.add_store("us-main")
    placed = harness.sb.place_order([{"sku": "A", "qty": 1, "price": 5.0}])
    harness.sb.tiktok.system_cancel(placed.tiktok_order_id)
    harness.run("run", "--once")

    out = harness.run("explain", placed.tiktok_order_id)[1]
    assert "    cancelled by: TikTok (system" in out
    assert "TikTok reason: system_cancel" in out


def test_explain_shows_a_merchant_refund_sent_to_tiktok(harness: Harness) -> None:
    """Direction A: the merchant's credit memo (lines, amounts), the TikTok order's
    total, and the cancel sent with its reason."""
    harness.sb.add_store("us-main", refund_to_cancel=True)
    placed = harness.sb.place_order([{"sku": "MUG", "qty": 3, "price": 6.0}])
    harness.sb.magento.create_credit_memo(placed.magento_entity_id, None)
    assert harness.run("run", "--once")[0] == 0

    out = harness.run("explain", placed.magento_increment_id)[1]
    inc = f"#{placed.magento_increment_id}"
    assert re.search(rf"  #1 Magento credit memo \d+, {ISO_AGO}\n", out), out
    assert "    cancelled by: the merchant, with a Magento credit memo\n" in out
    assert "    lines: 3 x MUG\n" in out
    assert (
        f"    Magento {inc}: credit memo 23, grand total 23, refunded 23 when seen"
        in out
    )
    assert "    TikTok: order total 23.00 USD; order AWAITING_SHIPMENT\n" in out
    assert (
        "    plan: cancel on TikTok (whole order) with reason "
        "seller_cancel_paid_reason_address_not_deliver\n" in out
    )
    (entry,) = harness.ledger()
    assert len(json.dumps(entry.payload_dict()["seen"])) < 600  # JSON-small
