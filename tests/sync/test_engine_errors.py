"""One bad event never stops the others (issue 8, point 4), end to end through the CLI.

A read error while handling one event becomes that event's failure: retryable → ``failed``
with a next attempt time (re-driven by the retry pass), anything else → ``needs_attention``
with the platform's code and message. The page, the cursor and the other events go on.
"""

from __future__ import annotations

import pytest

from cancelsync.sandbox.common import Fault

from .conftest import Harness

ORDER_DETAIL = r"GET /order/\{v\}/orders"
UNKNOWN_CODE = 12052900


def _seller_cancelled(harness: Harness, tiktok_order_id: str) -> bool:
    return harness.sb.tiktok.order(tiktok_order_id)["status"] == "CANCELLED"


# ---------------------------------------------------------------------- direction A


def test_unknown_tiktok_code_on_one_order_needs_attention_and_others_sync(
    harness: Harness,
) -> None:
    """An unexpected code on one order's detail is that memo's attention item (with the
    code); the next memo is still cancelled and the cursor moves past both."""
    harness.sb.add_store("us-main", refund_to_cancel=True)
    bad = harness.sb.place_order([{"sku": "A", "qty": 1, "price": 5.0}])
    good = harness.sb.place_order([{"sku": "B", "qty": 1, "price": 6.0}])
    harness.sb.magento.create_credit_memo(bad.magento_entity_id, None)
    harness.sb.magento.create_credit_memo(good.magento_entity_id, None)
    harness.sb.tiktok.fail_order_detail(bad.tiktok_order_id, UNKNOWN_CODE, "odd")

    rc, _ = harness.run("run", "--once")

    assert rc == 1  # a new item needs attention
    assert _seller_cancelled(harness, good.tiktok_order_id)
    assert not _seller_cancelled(harness, bad.tiktok_order_id)
    status = harness.status()["stores"][0]
    (attention,) = status["needs_attention"]
    assert str(UNKNOWN_CODE) in attention["reason"]
    assert "odd" in attention["reason"]
    assert status["cursors"]["magento.creditmemos"] > 0

    harness.sb.tiktok.heal_order_detail(bad.tiktok_order_id)
    assert harness.run("retry", "--all")[0] == 0
    rc, _ = harness.run("run", "--once")
    assert rc == 0
    assert _seller_cancelled(harness, bad.tiktok_order_id)
    assert harness.cancel_posts() == 2


def test_transient_10006402_on_order_detail_is_retried_like_a_5xx(
    harness: Harness,
) -> None:
    """TikTok's "Internal error. Please try again" on a read is backed off and retried."""
    harness.sb.add_store("us-main", refund_to_cancel=True)
    placed = harness.sb.place_order([{"sku": "A", "qty": 1, "price": 5.0}])
    harness.sb.magento.create_credit_memo(placed.magento_entity_id, None)
    harness.sb.tiktok.inject_transient(ORDER_DETAIL, count=2)

    rc, _ = harness.run("run", "--once")

    assert rc == 0
    assert _seller_cancelled(harness, placed.tiktok_order_id)
    assert len(harness.sleeps) == 2
    assert harness.cancel_posts() == 1


def test_magento_order_read_error_fails_only_that_memo(harness: Harness) -> None:
    """A Magento 500 that outlasts the read retries of the page's order search and then
    of one memo's own order read leaves that memo failed for the retry pass; the other
    memo is cancelled, and the next run heals the first."""
    harness.sb.add_store("us-main", refund_to_cancel=True)
    first = harness.sb.place_order([{"sku": "A", "qty": 1, "price": 5.0}])
    second = harness.sb.place_order([{"sku": "B", "qty": 1, "price": 6.0}])
    harness.sb.magento.create_credit_memo(first.magento_entity_id, None)
    harness.sb.magento.create_credit_memo(second.magento_entity_id, None)
    harness.sb.magento_faults.next_calls(
        "GET orders", Fault("status", status=500), count=5
    )
    harness.sb.magento_faults.next_calls(
        r"GET orders/\{id\}", Fault("status", status=500), count=5
    )

    rc, _ = harness.run("run", "--once", retry_backoff_seconds=0)

    assert rc == 1  # this run hit a failure
    assert not _seller_cancelled(harness, first.tiktok_order_id)
    assert _seller_cancelled(harness, second.tiktok_order_id)
    (failed,) = [e for e in harness.ledger() if e.state == "failed"]
    assert failed.next_attempt_at is not None
    assert "500" in (failed.last_error or "")

    rc, _ = harness.run("run", "--once", retry_backoff_seconds=0)
    assert rc == 0
    assert _seller_cancelled(harness, first.tiktok_order_id)
    assert harness.cancel_posts() == 2
    memo_rows = [
        e.state for e in harness.ledger() if e.direction == "magento_to_tiktok"
    ]
    assert memo_rows == ["done", "done"]


# ---------------------------------------------------------------------- direction B


def test_one_bad_order_in_a_batched_detail_read_does_not_stall_the_stream(
    harness: Harness,
) -> None:
    """The page's batched order read fails because of one order: each event is read on
    its own, so only that cancellation needs attention and the cursor moves on."""
    harness.sb.add_store("us-main")
    bad = harness.sb.place_order([{"sku": "A", "qty": 1, "price": 5.0}])
    good = harness.sb.place_order([{"sku": "B", "qty": 1, "price": 6.0}])
    harness.sb.tiktok.buyer_cancel(bad.tiktok_order_id)
    harness.sb.tiktok.buyer_cancel(good.tiktok_order_id)
    harness.sb.tiktok.fail_order_detail(bad.tiktok_order_id, UNKNOWN_CODE, "odd")

    rc, _ = harness.run("run", "--once")

    assert rc == 1
    assert len(harness.memos(good.magento_entity_id)) == 1
    assert harness.memos(bad.magento_entity_id) == []
    status = harness.status()["stores"][0]
    (attention,) = status["needs_attention"]
    assert attention["tiktok_order_id"] == bad.tiktok_order_id
    assert str(UNKNOWN_CODE) in attention["reason"]
    assert "tiktok.cancellations" in status["cursors"]

    rc, _ = harness.run("run", "--once")
    assert rc == 0  # reported once; the stream is not stuck on it

    harness.sb.tiktok.heal_order_detail(bad.tiktok_order_id)
    assert harness.run("retry", "--all")[0] == 0
    rc, _ = harness.run("run", "--once")
    assert rc == 0
    assert len(harness.memos(bad.magento_entity_id)) == 1
    assert harness.refund_posts() == 2


def test_batched_magento_lookup_failure_falls_back_to_one_read_per_event(
    harness: Harness,
) -> None:
    """The page's batched Magento order search outlasts its retries; per-event lookups
    then find both orders and both are refunded in the same run."""
    harness.sb.add_store("us-main")
    one = harness.sb.place_order([{"sku": "A", "qty": 1, "price": 5.0}])
    two = harness.sb.place_order([{"sku": "B", "qty": 1, "price": 6.0}])
    harness.sb.tiktok.buyer_cancel(one.tiktok_order_id)
    harness.sb.tiktok.buyer_cancel(two.tiktok_order_id)
    harness.sb.magento_faults.next_calls(
        "GET orders", Fault("status", status=503), count=5
    )

    rc, _ = harness.run("run", "--once")

    assert rc == 0
    assert [len(harness.memos(p.magento_entity_id)) for p in (one, two)] == [1, 1]
    assert harness.refund_posts() == 2


def test_unreadable_order_detail_needs_attention_for_that_event_only(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A DataError from the order mapper lands on the cancellation whose order it is."""
    from cancelsync.clients.tiktok import mapper
    from cancelsync.errors import DataError

    harness.sb.add_store("us-main")
    bad = harness.sb.place_order([{"sku": "A", "qty": 1, "price": 5.0}])
    good = harness.sb.place_order([{"sku": "B", "qty": 1, "price": 6.0}])
    harness.sb.tiktok.buyer_cancel(bad.tiktok_order_id)
    harness.sb.tiktok.buyer_cancel(good.tiktok_order_id)
    real = mapper.order_from_json

    def garbled(raw: object, where: str = "order") -> object:
        if isinstance(raw, dict) and raw.get("id") == bad.tiktok_order_id:
            raise DataError(f"{where}.payment.total_amount: not a decimal")
        return real(raw, where)

    monkeypatch.setattr(mapper, "order_from_json", garbled)
    rc, _ = harness.run("run", "--once")

    assert rc == 1
    assert len(harness.memos(good.magento_entity_id)) == 1
    assert harness.memos(bad.magento_entity_id) == []
    (attention,) = harness.status()["stores"][0]["needs_attention"]
    assert attention["tiktok_order_id"] == bad.tiktok_order_id
    assert "not a decimal" in attention["reason"]
