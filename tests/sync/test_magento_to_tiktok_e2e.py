"""Direction A end to end: Magento credit memos → TikTok cancellations, through the CLI."""

from __future__ import annotations

import pytest

from .conftest import Harness


def _seller_cancels(harness: Harness, tiktok_order_id: str) -> list[dict[str, object]]:
    return [
        c
        for c in harness.sb.tiktok.cancellations(tiktok_order_id)
        if c["role"] == "SELLER"
    ]


def test_full_credit_memo_cancels_tiktok_order_with_us_reason(harness: Harness) -> None:
    """A merchant's full credit memo cancels the TikTok order once, with the US paid key."""
    harness.sb.add_store("us-main", refund_to_cancel=True)
    placed = harness.sb.place_order([{"sku": "A", "qty": 2, "price": 5.0}])
    harness.sb.magento.create_credit_memo(placed.magento_entity_id, None)

    rc, _ = harness.run("run", "--once")
    rc2, _ = harness.run("run", "--once")

    assert (rc, rc2) == (0, 0)
    assert harness.sb.tiktok.order(placed.tiktok_order_id)["status"] == "CANCELLED"
    cancels = _seller_cancels(harness, placed.tiktok_order_id)
    assert len(cancels) == 1
    assert (
        cancels[0]["cancel_reason"] == "seller_cancel_paid_reason_address_not_deliver"
    )
    assert harness.cancel_posts() == 1
    # No echo: our own seller cancel does not come back as a second Magento memo.
    assert len(harness.memos(placed.magento_entity_id)) == 1


def test_uk_shop_gets_the_uk_reason_key(uk_harness: Harness) -> None:
    """On a UK shop the configured reason is translated to its _uk key."""
    uk_harness.sb.add_store("uk-main", refund_to_cancel=True)
    placed = uk_harness.sb.place_order([{"sku": "A", "qty": 1, "price": 5.0}])
    uk_harness.sb.magento.create_credit_memo(placed.magento_entity_id, None)

    rc, _ = uk_harness.run("run", "--once")

    assert rc == 0
    cancels = _seller_cancels(uk_harness, placed.tiktok_order_id)
    assert [c["cancel_reason"] for c in cancels] == [
        "seller_cancel_paid_reason_address_not_deliver_uk"
    ]


def test_reason_family_is_translated_for_the_market(harness: Harness) -> None:
    """A reason family (wrong_price) becomes the key valid for a paid US order."""
    harness.sb.add_store("us-main", refund_to_cancel=True, cancel_reason="wrong_price")
    placed = harness.sb.place_order([{"sku": "A", "qty": 1, "price": 5.0}])
    harness.sb.magento.create_credit_memo(placed.magento_entity_id, None)

    rc, _ = harness.run("run", "--once")

    assert rc == 0
    cancels = _seller_cancels(harness, placed.tiktok_order_id)
    assert [c["cancel_reason"] for c in cancels] == ["seller_cancel_reason_wrong_price"]


def test_direction_a_off_makes_no_tiktok_call(harness: Harness) -> None:
    """With magento_refund_to_tiktok_cancel off (the default) no cancel is sent."""
    harness.sb.add_store("us-main")
    placed = harness.sb.place_order([{"sku": "A", "qty": 1, "price": 5.0}])
    harness.sb.magento.create_credit_memo(placed.magento_entity_id, None)

    rc, _ = harness.run("run", "--once")

    assert rc == 0
    assert harness.cancel_posts() == 0
    assert (
        harness.sb.tiktok.order(placed.tiktok_order_id)["status"] == "AWAITING_SHIPMENT"
    )


def test_shipped_order_needs_attention_after_at_most_one_attempt(
    harness: Harness,
) -> None:
    """After shipment the memo is reported (return/refund path), never retried."""
    harness.sb.add_store("us-main", refund_to_cancel=True)
    placed = harness.sb.place_order([{"sku": "A", "qty": 1, "price": 5.0}])
    harness.sb.tiktok.ship(placed.tiktok_order_id)
    harness.sb.magento.create_credit_memo(placed.magento_entity_id, None)

    rc1, _ = harness.run("run", "--once")
    rc2, _ = harness.run("run", "--once")
    rc3, _ = harness.run("run", "--once")

    assert (rc1, rc2, rc3) == (1, 0, 0)
    assert harness.cancel_posts() <= 1
    attention = harness.status()["stores"][0]["needs_attention"]
    assert len(attention) == 1
    assert "return/refund" in attention[0]["reason"]


def test_partial_credit_memo_never_cancels_the_whole_order(harness: Harness) -> None:
    """A one-line memo leaves the TikTok order alone by default and needs attention."""
    harness.sb.add_store("us-main", refund_to_cancel=True)
    placed = harness.sb.place_order(
        [{"sku": "A", "qty": 1, "price": 5.0}, {"sku": "B", "qty": 1, "price": 9.0}]
    )
    harness.sb.magento.create_credit_memo(
        placed.magento_entity_id, {"A": 1}, shipping_amount=0
    )

    rc, _ = harness.run("run", "--once")
    rc_again, _ = harness.run("run", "--once")

    assert (rc, rc_again) == (1, 0)  # reported once, not on every run
    assert harness.cancel_posts() == 0
    assert (
        harness.sb.tiktok.order(placed.tiktok_order_id)["status"] == "AWAITING_SHIPMENT"
    )
    attention = harness.status()["stores"][0]["needs_attention"]
    assert len(attention) == 1
    assert "1 x A" in attention[0]["reason"]


def test_a_partial_memo_item_is_closed_once_a_later_memo_cancels_the_whole_order(
    harness: Harness,
) -> None:
    """The partial memo's advice (TikTok still expects these units shipped) no longer
    holds once a second memo completes the refund and the TikTok order is cancelled:
    the item is closed as superseded, with a line in the order's timeline."""
    harness.sb.add_store("us-main", refund_to_cancel=True)
    placed = harness.sb.place_order(
        [{"sku": "A", "qty": 1, "price": 5.0}, {"sku": "B", "qty": 1, "price": 9.0}]
    )
    harness.sb.magento.create_credit_memo(
        placed.magento_entity_id, {"A": 1}, shipping_amount=0
    )
    assert harness.run("run", "--once")[0] == 1
    harness.sb.magento.create_credit_memo(placed.magento_entity_id, None)

    rc, _ = harness.run("run", "--once")
    rc_again, _ = harness.run("run", "--once")

    assert (rc, rc_again) == (0, 0)
    assert harness.sb.tiktok.order(placed.tiktok_order_id)["status"] == "CANCELLED"
    assert harness.status()["stores"][0]["needs_attention"] == []
    # The partial memo's item, the whole cancel, and its echo skipped by direction B.
    first, cancel, echo = harness.ledger()
    assert (first.state, first.reason_code) == ("done", "superseded")
    assert (cancel.state, cancel.reason_code) == ("done", None)
    assert echo.reason_code == "echo"
    assert f"action #{cancel.action_id}" in (first.reason or "")
    assert "superseded" in harness.run("explain", placed.tiktok_order_id)[1]


def test_partial_memo_with_cancel_items_cancels_only_those_lines(
    harness: Harness,
) -> None:
    """Opt-in line cancels touch only the refunded SKU's lines, never the whole order."""
    harness.sb.add_store(
        "us-main", refund_to_cancel=True, partial_refunds="cancel_items"
    )
    placed = harness.sb.place_order(
        [{"sku": "A", "qty": 1, "price": 5.0}, {"sku": "B", "qty": 1, "price": 9.0}]
    )
    harness.sb.magento.create_credit_memo(
        placed.magento_entity_id, {"A": 1}, shipping_amount=0
    )

    rc, _ = harness.run("run", "--once")

    assert rc == 0
    order = harness.sb.tiktok.order(placed.tiktok_order_id)
    assert order["status"] != "CANCELLED"
    by_sku = {
        line["seller_sku"]: line["display_status"] for line in order["line_items"]
    }
    assert by_sku == {"A": "CANCELLED", "B": "AWAITING_SHIPMENT"}


def test_second_memo_completing_the_refund_cancels_the_order(harness: Harness) -> None:
    """Full refund is judged cumulatively: the memo that completes it cancels the order."""
    harness.sb.add_store("us-main", refund_to_cancel=True)
    placed = harness.sb.place_order(
        [{"sku": "A", "qty": 1, "price": 5.0}, {"sku": "B", "qty": 1, "price": 9.0}]
    )
    harness.sb.magento.create_credit_memo(
        placed.magento_entity_id, {"A": 1}, shipping_amount=0
    )
    rc, _ = harness.run("run", "--once")
    assert rc == 1  # the partial memo is a divergence a person sees
    assert harness.cancel_posts() == 0

    harness.sb.magento.create_credit_memo(
        placed.magento_entity_id, {"B": 1}, shipping_amount=0
    )
    rc, _ = harness.run("run", "--once")

    assert rc == 0
    assert harness.sb.tiktok.order(placed.tiktok_order_id)["status"] == "CANCELLED"
    assert harness.cancel_posts() == 1


def test_pending_buyer_request_is_approved_and_not_refunded_twice(
    harness: Harness,
) -> None:
    """A full memo approves the buyer's pending request; its success is not refunded again."""
    harness.sb.add_store("us-main", refund_to_cancel=True)
    placed = harness.sb.place_order([{"sku": "A", "qty": 1, "price": 5.0}])
    cancel_id = harness.sb.tiktok.buyer_cancel(placed.tiktok_order_id, pending=True)
    harness.sb.magento.create_credit_memo(placed.magento_entity_id, None)

    rc, _ = harness.run("run", "--once")
    rc2, _ = harness.run("run", "--once")

    assert (rc, rc2) == (0, 0)
    approvals = harness.sb.tiktok_server.journal.count(
        r"POST /return_refund/202309/cancellations/\{cancel_id\}/approve"
    )
    assert approvals == 1
    assert harness.cancel_posts() == 0
    record = next(
        c
        for c in harness.sb.tiktok.cancellations(placed.tiktok_order_id)
        if c["cancel_id"] == cancel_id
    )
    assert record["cancel_status"] != "CANCELLATION_REQUEST_PENDING"
    assert harness.sb.tiktok.order(placed.tiktok_order_id)["status"] == "CANCELLED"
    assert len(harness.memos(placed.magento_entity_id)) == 1
    assert harness.refund_posts() == 0


def test_both_directions_on_never_echo(harness: Harness) -> None:
    """Each side's change is mirrored once and never bounces back."""
    harness.sb.add_store("us-main", refund_to_cancel=True)
    buyer = harness.sb.place_order([{"sku": "A", "qty": 1, "price": 5.0}])
    merchant = harness.sb.place_order([{"sku": "B", "qty": 1, "price": 6.0}])
    harness.sb.tiktok.buyer_cancel(buyer.tiktok_order_id)
    harness.sb.magento.create_credit_memo(merchant.magento_entity_id, None)

    for _ in range(3):
        rc, _ = harness.run("run", "--once")
        assert rc == 0

    assert len(harness.memos(buyer.magento_entity_id)) == 1
    assert len(harness.memos(merchant.magento_entity_id)) == 1
    assert harness.refund_posts() == 1
    assert harness.cancel_posts() == 1
    assert _seller_cancels(harness, buyer.tiktok_order_id) == []


def test_two_stores_obey_their_own_settings(harness: Harness) -> None:
    """Two shops in one config: each store's directions and restock follow its table."""
    us = harness.sb.add_store("us-main", refund_to_cancel=True, restock=True,
                              magento_store_ids=(1,))  # fmt: skip
    eu = harness.sb.add_store("us-second", refund_to_cancel=False, restock=False,
                              magento_store_ids=(2,))  # fmt: skip
    us_cancelled = harness.sb.place_order(
        [{"sku": "U1", "qty": 1, "price": 5.0}], store=us
    )
    eu_cancelled = harness.sb.place_order(
        [{"sku": "E1", "qty": 1, "price": 5.0}], store=eu, magento_store_id=2
    )
    us_memo = harness.sb.place_order([{"sku": "U2", "qty": 1, "price": 5.0}], store=us)
    eu_memo = harness.sb.place_order(
        [{"sku": "E2", "qty": 1, "price": 5.0}], store=eu, magento_store_id=2
    )
    stock = {sku: harness.sb.magento.stock(sku) for sku in ("U1", "E1")}
    harness.sb.tiktok.buyer_cancel(us_cancelled.tiktok_order_id)
    harness.sb.tiktok.buyer_cancel(eu_cancelled.tiktok_order_id)
    harness.sb.magento.create_credit_memo(us_memo.magento_entity_id, None)
    harness.sb.magento.create_credit_memo(eu_memo.magento_entity_id, None)

    rc, _ = harness.run("run", "--once")

    assert rc == 0
    assert harness.sb.magento.stock("U1") == stock["U1"] + 1  # restock on
    assert harness.sb.magento.stock("E1") == stock["E1"]  # restock off
    assert harness.sb.tiktok.order(us_memo.tiktok_order_id)["status"] == "CANCELLED"
    assert (
        harness.sb.tiktok.order(eu_memo.tiktok_order_id)["status"]
        == "AWAITING_SHIPMENT"
    )
    names = [s["name"] for s in harness.status()["stores"]]
    assert names == ["us-main", "us-second"]


def test_run_once_for_one_store_only(harness: Harness) -> None:
    """--store NAME syncs that store and leaves the other untouched."""
    first = harness.sb.add_store("us-main")
    second = harness.sb.add_store("us-second")
    a = harness.sb.place_order([{"sku": "A", "qty": 1, "price": 5.0}], store=first)
    b = harness.sb.place_order([{"sku": "B", "qty": 1, "price": 5.0}], store=second)
    harness.sb.tiktok.buyer_cancel(a.tiktok_order_id)
    harness.sb.tiktok.buyer_cancel(b.tiktok_order_id)

    rc, _ = harness.run("run", "--once", "--store", "us-second")

    assert rc == 0
    assert harness.memos(a.magento_entity_id) == []
    assert len(harness.memos(b.magento_entity_id)) == 1


def test_lost_cancel_response_is_reconciled_not_resent(harness: Harness) -> None:
    """The TikTok cancel is applied but its reply lost: re-read finds it, nothing resent."""
    from cancelsync.sandbox.common import Fault

    harness.sb.add_store("us-main", refund_to_cancel=True)
    placed = harness.sb.place_order([{"sku": "A", "qty": 1, "price": 5.0}])
    harness.sb.magento.create_credit_memo(placed.magento_entity_id, None)
    harness.sb.tiktok_faults.next_calls(
        r"POST /return_refund/\{v\}/cancellations", Fault("lost_response")
    )

    rc, _ = harness.run("run", "--once")
    rc2, _ = harness.run("run", "--once")

    assert (rc, rc2) == (0, 0)
    assert harness.cancel_posts() == 1
    assert len(_seller_cancels(harness, placed.tiktok_order_id)) == 1
    assert harness.status()["stores"][0]["actions"]["done"] == 1


def test_direction_enabled_later_starts_at_the_lookback(harness: Harness) -> None:
    """Turning direction A on picks up memos from the lookback window, then the keyset."""
    spec = harness.sb.add_store("us-main", refund_to_cancel=False)
    placed = harness.sb.place_order([{"sku": "A", "qty": 1, "price": 5.0}])
    harness.sb.magento.create_credit_memo(placed.magento_entity_id, None)
    rc, _ = harness.run("run", "--once")
    assert rc == 0
    assert harness.cancel_posts() == 0

    from dataclasses import replace

    harness.sb.stores[0] = replace(spec, refund_to_cancel=True)
    rc, _ = harness.run("run", "--once")
    assert rc == 0
    assert harness.sb.tiktok.order(placed.tiktok_order_id)["status"] == "CANCELLED"

    later = harness.sb.place_order([{"sku": "B", "qty": 1, "price": 5.0}])
    harness.sb.magento.create_credit_memo(later.magento_entity_id, None)
    rc, _ = harness.run("run", "--once")
    assert rc == 0
    assert harness.sb.tiktok.order(later.tiktok_order_id)["status"] == "CANCELLED"
    assert harness.cancel_posts() == 2
    cursors = harness.status()["stores"][0]["cursors"]
    assert cursors["magento.creditmemos"] == 2


def test_unreadable_credit_memo_is_reported_and_does_not_block_others(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One garbled credit memo needs attention; the next memo still cancels its order."""
    from cancelsync.clients.magento import mapper
    from cancelsync.errors import DataError

    harness.sb.add_store("us-main", refund_to_cancel=True)
    bad = harness.sb.place_order([{"sku": "A", "qty": 1, "price": 5.0}])
    good = harness.sb.place_order([{"sku": "B", "qty": 1, "price": 6.0}])
    bad_memo = harness.sb.magento.create_credit_memo(bad.magento_entity_id, None)
    harness.sb.magento.create_credit_memo(good.magento_entity_id, None)
    real = mapper.credit_memo_from_json

    def garbled(raw: object, *args: object, **kwargs: object) -> object:
        if isinstance(raw, dict) and raw.get("entity_id") == bad_memo:
            raise DataError("magento credit memo.grand_total: not a number")
        return real(raw, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(mapper, "credit_memo_from_json", garbled)
    rc, _ = harness.run("run", "--once")

    assert rc == 1
    assert harness.sb.tiktok.order(good.tiktok_order_id)["status"] == "CANCELLED"
    assert harness.sb.tiktok.order(bad.tiktok_order_id)["status"] == "AWAITING_SHIPMENT"
    attention = harness.status()["stores"][0]["needs_attention"]
    assert len(attention) == 1
    assert "cannot be read" in attention[0]["reason"]

    rc, _ = harness.run("retry", "--all")
    rc, _ = harness.run("run", "--once")  # still garbled: reported again, no crash
    assert rc == 1
    monkeypatch.setattr(mapper, "credit_memo_from_json", real)  # the store was fixed
    rc, _ = harness.run("retry", "--all")
    rc, _ = harness.run("run", "--once")
    assert rc == 0
    assert harness.sb.tiktok.order(bad.tiktok_order_id)["status"] == "CANCELLED"
