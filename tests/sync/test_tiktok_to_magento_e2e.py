"""Direction B end to end: TikTok cancellations → Magento refunds, through the CLI."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cancelsync.sandbox.common import Fault
from cancelsync.sync.engine import Engine

from .conftest import Harness


def _lines_of(harness: Harness, tiktok_order_id: str, sku: str) -> list[str]:
    order = harness.sb.tiktok.order(tiktok_order_id)
    return [line["id"] for line in order["line_items"] if line["seller_sku"] == sku]


def test_buyer_cancel_creates_one_full_credit_memo_and_restocks(
    harness: Harness,
) -> None:
    """A buyer's full cancellation refunds everything offline once, stock back with restock."""
    harness.sb.add_store("us-main", restock=True)
    placed = harness.sb.place_order(
        [{"sku": "TEE-RED-M", "qty": 2, "price": 10.0}], shipping_fee=5.0
    )
    stock_before = harness.sb.magento.stock("TEE-RED-M")
    harness.sb.tiktok.buyer_cancel(placed.tiktok_order_id)

    rc, _ = harness.run("run", "--once")

    assert rc == 0
    memos = harness.memos(placed.magento_entity_id)
    assert len(memos) == 1
    assert float(memos[0]["grand_total"]) == pytest.approx(25.0)
    order = harness.sb.magento.order(placed.magento_entity_id)
    assert order["state"] == "closed"
    assert harness.sb.magento.stock("TEE-RED-M") == stock_before + 2
    comments = " ".join(c["comment"] for c in memos[0]["comments"])
    assert placed.tiktok_order_id in comments


def test_restock_off_leaves_stock_alone(harness: Harness) -> None:
    """With restock = false the refund returns nothing to stock."""
    harness.sb.add_store("us-main", restock=False)
    placed = harness.sb.place_order([{"sku": "MUG", "qty": 1, "price": 8.0}])
    stock_before = harness.sb.magento.stock("MUG")
    harness.sb.tiktok.buyer_cancel(placed.tiktok_order_id)

    rc, _ = harness.run("run", "--once")

    assert rc == 0
    assert len(harness.memos(placed.magento_entity_id)) == 1
    assert harness.sb.magento.stock("MUG") == stock_before


def test_configurable_product_refunds_parent_and_restocks_child(
    harness: Harness,
) -> None:
    """A configurable line is refunded on its parent row; the child goes back to stock."""
    harness.sb.add_store("us-main")
    placed = harness.sb.place_order(
        [
            {
                "sku": "HOODIE-BLK-L",
                "qty": 1,
                "price": 40.0,
                "product_type": "configurable",
            }
        ]
    )
    before = harness.sb.magento.stock("HOODIE-BLK-L")
    harness.sb.tiktok.buyer_cancel(placed.tiktok_order_id)

    rc, _ = harness.run("run", "--once")

    assert rc == 0
    assert harness.sb.magento.order(placed.magento_entity_id)["state"] == "closed"
    assert harness.sb.magento.stock("HOODIE-BLK-L") == before + 1


def test_system_auto_cancel_is_refunded(harness: Harness) -> None:
    """TikTok's own (system) cancellation is mirrored like a buyer's."""
    harness.sb.add_store("us-main")
    placed = harness.sb.place_order([{"sku": "CAP", "qty": 1, "price": 12.0}])
    harness.sb.tiktok.system_cancel(placed.tiktok_order_id)

    rc, _ = harness.run("run", "--once")

    assert rc == 0
    assert len(harness.memos(placed.magento_entity_id)) == 1
    assert harness.sb.magento.order(placed.magento_entity_id)["state"] == "closed"


def test_partial_line_cancel_creates_partial_credit_memo(harness: Harness) -> None:
    """Cancelling one line refunds that line only, without shipping; the order stays open."""
    harness.sb.add_store("us-main")
    placed = harness.sb.place_order(
        [
            {"sku": "SOCKS", "qty": 3, "price": 4.0},
            {"sku": "SHOE", "qty": 1, "price": 50.0},
        ],
        shipping_fee=6.0,
    )
    one_sock = _lines_of(harness, placed.tiktok_order_id, "SOCKS")[:1]
    harness.sb.tiktok.partial_cancel(placed.tiktok_order_id, one_sock)

    rc, _ = harness.run("run", "--once")

    assert rc == 0
    memos = harness.memos(placed.magento_entity_id)
    assert len(memos) == 1
    assert float(memos[0]["grand_total"]) == pytest.approx(4.0)
    assert float(memos[0]["shipping_amount"]) == 0
    order = harness.sb.magento.order(placed.magento_entity_id)
    assert order["state"] == "processing"
    socks = next(i for i in order["items"] if i["sku"] == "SOCKS")
    assert float(socks["qty_refunded"]) == 1


def test_uninvoiced_order_is_cancelled_in_magento(harness: Harness) -> None:
    """An order with nothing invoiced is cancelled (orders/{id}/cancel), not refunded."""
    harness.sb.add_store("us-main")
    placed = harness.sb.place_order(
        [{"sku": "PEN", "qty": 1, "price": 2.0}], invoiced=False
    )
    harness.sb.tiktok.buyer_cancel(placed.tiktok_order_id)

    rc, _ = harness.run("run", "--once")

    assert rc == 0
    assert harness.sb.magento.order(placed.magento_entity_id)["state"] == "canceled"
    assert harness.memos(placed.magento_entity_id) == []


def test_cancel_of_an_order_never_imported_is_skipped(harness: Harness) -> None:
    """A cancellation whose order is not in Magento is recorded as skipped, not an error."""
    harness.sb.add_store("us-main")
    tiktok_id = harness.sb.tiktok.create_order(
        harness.sb.demo.shop_id,
        [{"sku_id": "1", "seller_sku": "X", "price": "3.00", "quantity": 1}],
    )
    harness.sb.tiktok.buyer_cancel(tiktok_id)

    rc, _ = harness.run("run", "--once")

    assert rc == 0
    assert harness.refund_posts() == 0
    store = harness.status()["stores"][0]
    assert store["actions"]["skipped"] == 1
    assert store["never_imported"] == 1  # counted per store, not a silent skip
    rc, out = harness.run("status")
    assert "never imported: 1" in out
    assert "tiktok_order_id_field" in out
    rc, out = harness.run("explain", tiktok_id)
    assert "never imported" in out


def test_three_reruns_still_one_refund(harness: Harness) -> None:
    """Running again and again never refunds a cancellation twice."""
    harness.sb.add_store("us-main")
    placed = harness.sb.place_order(
        [{"sku": "A", "qty": 2, "price": 5.0}, {"sku": "B", "qty": 1, "price": 7.0}]
    )
    lines = _lines_of(harness, placed.tiktok_order_id, "A")[:1]
    harness.sb.tiktok.partial_cancel(placed.tiktok_order_id, lines)

    for _ in range(4):
        rc, _ = harness.run("run", "--once")
        assert rc == 0

    assert len(harness.memos(placed.magento_entity_id)) == 1
    assert harness.refund_posts() == 1


def test_lost_refund_response_gives_exactly_one_refund(harness: Harness) -> None:
    """The refund is applied but its reply lost: the next look finds it, no second memo."""
    harness.sb.add_store("us-main")
    placed = harness.sb.place_order(
        [{"sku": "A", "qty": 2, "price": 5.0}, {"sku": "B", "qty": 1, "price": 7.0}]
    )
    harness.sb.tiktok.partial_cancel(
        placed.tiktok_order_id, _lines_of(harness, placed.tiktok_order_id, "A")[:1]
    )
    harness.sb.magento_faults.next_calls(
        r"POST order/\{id\}/refund", Fault("lost_response")
    )

    rc, _ = harness.run("run", "--once")
    rc2, _ = harness.run("run", "--once")

    assert rc == 0  # reconciled in the same run: the memo carries our marker
    assert rc2 == 0
    assert len(harness.memos(placed.magento_entity_id)) == 1
    assert harness.refund_posts() == 1
    entry = harness.status()["stores"][0]
    assert entry["actions"]["done"] == 1


class Crash(BaseException):
    """Stands in for the process dying (kill -9) at a chosen point."""


def test_crash_after_write_before_ledger_update_gives_one_refund(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash between the refund and recording it is reconciled, never refunded twice."""
    harness.sb.add_store("us-main")
    placed = harness.sb.place_order(
        [{"sku": "A", "qty": 2, "price": 5.0}, {"sku": "B", "qty": 1, "price": 7.0}]
    )
    harness.sb.tiktok.partial_cancel(
        placed.tiktok_order_id, _lines_of(harness, placed.tiktok_order_id, "A")[:1]
    )
    real_done = Engine._done

    def crash(self: Engine, *args: object, **kwargs: object) -> None:
        raise Crash

    monkeypatch.setattr(Engine, "_done", crash)
    with pytest.raises(Crash):
        harness.run("run", "--once")
    assert len(harness.memos(placed.magento_entity_id)) == 1
    scope = harness.status()["stores"][0]["scope"]
    store = harness.store()
    pending = store.ledger.in_state(scope, "pending")
    store.close()
    assert len(pending) == 1

    monkeypatch.setattr(Engine, "_done", real_done)
    # At once, the row is held (the write could still be in flight): nothing happens.
    assert harness.run("run", "--once")[0] == 0
    assert harness.refund_posts() == 1
    # Once the hold has passed, the row is re-read and found done, not sent again.
    store = harness.store()
    past = datetime.now(UTC) - timedelta(seconds=1)
    store.ledger.update(pending[0].idempotency_key, past, next_attempt_at=past)
    store.close()
    rc, _ = harness.run("run", "--once")

    assert rc == 0
    assert len(harness.memos(placed.magento_entity_id)) == 1
    assert harness.refund_posts() == 1
    assert harness.status()["stores"][0]["actions"]["done"] == 1


def test_late_event_inside_the_overlap_is_processed(harness: Harness) -> None:
    """A cancellation stamped behind the last poll, within the overlap, is still synced."""
    harness.sb.add_store("us-main")
    first = harness.sb.place_order([{"sku": "A", "qty": 1, "price": 5.0}])
    harness.sb.tiktok.buyer_cancel(first.tiktok_order_id)
    rc, _ = harness.run("run", "--once")
    assert rc == 0

    late = harness.sb.place_order([{"sku": "B", "qty": 1, "price": 6.0}])
    cancel_id = harness.sb.tiktok.buyer_cancel(late.tiktok_order_id)
    harness.sb.tiktok.backdate(cancel_id, 120)  # arrives "in the past", inside 300 s
    rc, _ = harness.run("run", "--once")

    assert rc == 0
    assert len(harness.memos(late.magento_entity_id)) == 1


def test_dry_run_writes_nothing_and_moves_no_cursor(harness: Harness) -> None:
    """--dry-run decides and prints, but refunds nothing and records nothing."""
    harness.sb.add_store("us-main")
    placed = harness.sb.place_order([{"sku": "A", "qty": 1, "price": 5.0}])
    harness.sb.tiktok.buyer_cancel(placed.tiktok_order_id)

    rc, out = harness.run("run", "--once", "--dry-run")

    assert rc == 0
    assert "would refund Magento order" in out
    assert harness.memos(placed.magento_entity_id) == []
    status = harness.status()["stores"][0]
    assert status["cursors"] == {}
    assert sum(status["actions"].values()) == 0
    rc, _ = harness.run("run", "--once")
    assert len(harness.memos(placed.magento_entity_id)) == 1


def test_magento_order_on_hold_needs_attention_once(harness: Harness) -> None:
    """A held Magento order is flagged: exit 1 on the run that finds it, 0 afterwards."""
    harness.sb.add_store("us-main")
    placed = harness.sb.place_order([{"sku": "A", "qty": 1, "price": 5.0}])
    harness.sb.magento.hold_order(placed.magento_entity_id)
    harness.sb.tiktok.buyer_cancel(placed.tiktok_order_id)

    rc1, _ = harness.run("run", "--once")
    rc2, _ = harness.run("run", "--once")

    assert (rc1, rc2) == (1, 0)
    attention = harness.status()["stores"][0]["needs_attention"]
    assert len(attention) == 1
    assert "on hold" in attention[0]["reason"]
    assert harness.refund_posts() == 0

    harness.sb.magento.unhold_order(placed.magento_entity_id)
    rc, _ = harness.run("retry", "--all")
    assert rc == 0
    rc, _ = harness.run("run", "--once")
    assert rc == 0
    assert len(harness.memos(placed.magento_entity_id)) == 1


def test_retryable_failure_backs_off_and_does_not_block_others(
    harness: Harness,
) -> None:
    """503s on one refund that outlast the in-run retries leave it failed for later while
    the other order is refunded."""
    harness.sb.add_store("us-main")
    one = harness.sb.place_order([{"sku": "A", "qty": 1, "price": 5.0}])
    two = harness.sb.place_order([{"sku": "B", "qty": 1, "price": 6.0}])
    harness.sb.tiktok.buyer_cancel(one.tiktok_order_id)
    harness.sb.tiktok.buyer_cancel(two.tiktok_order_id)
    harness.sb.magento_faults.next_calls(
        r"POST order/\{id\}/refund", Fault("status", status=503), count=5
    )

    # One action at a time: the five faults meet the first order's five sends.
    rc, _ = harness.run("run", "--once", retry_backoff_seconds=0, max_in_flight=1)

    assert rc == 1  # this run hit a failure
    refunded = [len(harness.memos(p.magento_entity_id)) for p in (one, two)]
    assert sorted(refunded) == [0, 1]
    status = harness.status()["stores"][0]
    assert status["actions"]["failed"] == 1
    assert status["failed"][0]["last_error"]

    rc, _ = harness.run("run", "--once", retry_backoff_seconds=0)
    assert rc == 0
    assert [len(harness.memos(p.magento_entity_id)) for p in (one, two)] == [1, 1]


def test_unreadable_cancellation_is_reported_and_does_not_block_the_page(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One garbled cancellation needs attention; the others on its page still sync."""
    from cancelsync.clients.tiktok import mapper
    from cancelsync.errors import DataError

    harness.sb.add_store("us-main")
    bad = harness.sb.place_order(
        [{"sku": "A", "qty": 1, "price": 5.0}, {"sku": "C", "qty": 1, "price": 7.0}]
    )
    good = harness.sb.place_order([{"sku": "B", "qty": 1, "price": 6.0}])
    bad_cancel = harness.sb.tiktok.partial_cancel(
        bad.tiktok_order_id, _lines_of(harness, bad.tiktok_order_id, "A")
    )
    harness.sb.tiktok.buyer_cancel(good.tiktok_order_id)
    real = mapper.cancellation_from_json

    def garbled(raw: object, where: str = "cancellation") -> object:
        if isinstance(raw, dict) and raw.get("cancel_id") == bad_cancel:
            raise DataError(f"{where}.refund_amount: not a decimal")
        return real(raw, where)

    monkeypatch.setattr(mapper, "cancellation_from_json", garbled)
    rc, _ = harness.run("run", "--once")

    assert rc == 1  # a new item needs attention
    assert harness.memos(bad.magento_entity_id) == []
    assert len(harness.memos(good.magento_entity_id)) == 1
    attention = harness.status()["stores"][0]["needs_attention"]
    assert len(attention) == 1
    assert "cannot read" in attention[0]["reason"]

    monkeypatch.setattr(mapper, "cancellation_from_json", real)  # TikTok fixed its data
    rc, _ = harness.run("retry", "--all")
    rc, _ = harness.run("run", "--once")
    assert rc == 0
    assert len(harness.memos(bad.magento_entity_id)) == 1
    assert len(harness.memos(good.magento_entity_id)) == 1


def test_cancelled_order_without_a_cancellation_record_is_still_refunded(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Order search backs up cancellation search: a record TikTok never lists is not lost."""
    from cancelsync.clients.tiktok.client import TikTokClient

    harness.sb.add_store("us-main")
    placed = harness.sb.place_order([{"sku": "A", "qty": 2, "price": 5.0}])
    harness.sb.tiktok.buyer_cancel(placed.tiktok_order_id)
    real = TikTokClient.search_cancellations

    def missing_record(self: TikTokClient, **kw: object) -> object:
        for page in real(self, **kw):  # type: ignore[arg-type]
            yield [c for c in page if c.tiktok_order_id != placed.tiktok_order_id]

    monkeypatch.setattr(TikTokClient, "search_cancellations", missing_record)
    rc, _ = harness.run("run", "--once")

    assert rc == 0
    memos = harness.memos(placed.magento_entity_id)
    assert len(memos) == 1
    assert harness.sb.magento.order(placed.magento_entity_id)["state"] == "closed"

    monkeypatch.setattr(
        TikTokClient, "search_cancellations", real
    )  # the record appears
    for _ in range(2):
        rc, _ = harness.run("run", "--once")
        assert rc == 0
    assert len(harness.memos(placed.magento_entity_id)) == 1
    assert harness.refund_posts() == 1
    actions = harness.status()["stores"][0]["actions"]
    assert actions["done"] == 2  # the stand-in refund, then the record found it done


def test_magento_order_linked_to_another_tiktok_order_needs_attention(
    harness: Harness,
) -> None:
    """A Magento order already tied to another TikTok order is a person's call, never a
    silent skip: refunding it could refund the wrong money."""
    harness.sb.add_store("us-main")
    first = harness.sb.place_order([{"sku": "A", "qty": 2, "price": 5.0}])
    line = harness.sb.tiktok.order(first.tiktok_order_id)["line_items"][0]["id"]
    harness.sb.tiktok.buyer_cancel(first.tiktok_order_id, line_ids=[line])
    assert harness.run("run", "--once")[0] == 0  # links first ↔ its Magento order
    second_id = harness.sb.tiktok.create_order(
        harness.sb.demo.shop_id,
        [{"sku_id": "1", "seller_sku": "A", "price": "5.00", "quantity": 1}],
    )
    # The importer (or a person) re-pointed the Magento order at another TikTok order.
    order = harness.sb.magento.state.get_order(first.magento_entity_id)
    order.extra_columns["ext_order_id"] = second_id
    harness.sb.tiktok.buyer_cancel(second_id)

    rc, _ = harness.run("run", "--once")

    assert rc == 1
    assert harness.refund_posts() == 1  # only the first, partial, refund
    attention = harness.status()["stores"][0]["needs_attention"]
    assert [a["tiktok_order_id"] for a in attention] == [second_id]
    assert "already linked" in attention[0]["reason"]


def test_a_line_cancel_of_units_magento_already_refunded_is_not_refunded_again(
    harness: Harness,
) -> None:
    """The README's own advice for a partial memo left alone: cancel those units in
    Seller Center. With include_seller_cancellations, that cancel must not refund (and
    restock) the same unit a second time: TikTok's cancelled units of the SKU (1) are
    already matched by Magento's refunded ones (1), though the order has 2 x A."""
    harness.sb.add_store("us-main", include_seller_cancellations=True)
    placed = harness.sb.place_order([{"sku": "A", "qty": 2, "price": 5.0}])
    harness.sb.magento.create_credit_memo(
        placed.magento_entity_id, {"A": 1}, shipping_amount=0
    )
    stock = harness.sb.magento.stock("A")
    (line, _) = _lines_of(harness, placed.tiktok_order_id, "A")
    harness.sb.tiktok.seller_center_cancel(
        placed.tiktok_order_id, "seller_cancel_reason_out_of_stock", line_ids=[line]
    )

    rc, _ = harness.run("run", "--once")

    assert rc == 0
    assert harness.refund_posts() == 0
    assert len(harness.memos(placed.magento_entity_id)) == 1
    assert harness.sb.magento.stock("A") == stock
    (row,) = harness.ledger()
    assert row.state == "done"
    assert "already refunded" in (row.reason or "")


def test_a_second_line_cancel_of_the_same_sku_is_still_refunded(
    harness: Harness,
) -> None:
    """Two buyer line cancels of the same SKU, each refunded once: TikTok's cancelled
    units (2) against Magento's refunded ones (0, then 1)."""
    harness.sb.add_store("us-main")
    placed = harness.sb.place_order([{"sku": "A", "qty": 3, "price": 5.0}])
    first, second, _ = _lines_of(harness, placed.tiktok_order_id, "A")
    harness.sb.tiktok.partial_cancel(placed.tiktok_order_id, [first])
    harness.sb.tiktok.partial_cancel(placed.tiktok_order_id, [second])

    rc, _ = harness.run("run", "--once")

    assert rc == 0
    memos = harness.memos(placed.magento_entity_id)
    assert len(memos) == 2
    order = harness.sb.magento.order(placed.magento_entity_id)
    assert float(order["items"][0]["qty_refunded"]) == 2.0
