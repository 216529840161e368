"""Hostile API payloads end to end (issue 14): one bad item never sinks the cycle, nothing
is written on a guess, and the cursor never passes an item no ledger row records."""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, cast

import pytest
import structlog
from structlog.testing import capture_logs

from cancelsync.directions import Direction
from cancelsync.models import Unreadable
from cancelsync.sandbox.harness import PlacedOrder
from cancelsync.sandbox.hostile import (
    TIKTOK_CANCEL_SEARCH,
    HostileMagento,
    HostileTikTok,
    drop,
    put,
)
from cancelsync.sync.engine import CycleReport, Engine
from cancelsync.sync.flights import Flights
from cancelsync.sync.scan import MAX_SCAN_PAGES, CursorScan
from cancelsync.sync.tiktok_to_magento import CROSS_CHECK_STREAM

from .conftest import Harness

B_STREAM = "tiktok.cancellations"
A_STREAM = "magento.creditmemos"
ORDER_SEARCH = r"POST /order/202309/orders/search"
ARABIC_1700000000 = "\u0661\u0667" + "\u0660" * 8  # int() would read 1700000000


@dataclass
class Rig:
    """A harness with both simulators wrapped, three invoiced TikTok orders placed."""

    h: Harness
    tiktok: HostileTikTok
    magento: HostileMagento
    orders: list[PlacedOrder]

    @property
    def victim(self) -> PlacedOrder:
        return self.orders[1]

    def lines(self, order: PlacedOrder) -> list[str]:
        return [
            line["id"]
            for line in self.h.sb.tiktok.order(order.tiktok_order_id)["line_items"]
        ]

    def rows(self, order: PlacedOrder) -> list[Any]:
        """The order's ledger rows, and those of its records (an unreadable record's
        row may not know its order)."""
        cancel_ids = {c["cancel_id"] for c in self.h.sb.tiktok.cancellations(
            order.tiktok_order_id)}  # fmt: skip
        return [e for e in self.h.ledger()
                if e.tiktok_order_id == order.tiktok_order_id
                or e.tiktok_cancel_id in cancel_ids]  # fmt: skip

    def refunded(self) -> list[bool]:
        return [bool(self.h.memos(o.magento_entity_id)) for o in self.orders]

    def cursor(self, stream: str) -> int | None:
        store = self.h.store()
        try:
            cursor = store.cursors.get(f"shop:{self.h.sb.demo.shop_id}", stream)
            return None if cursor is None else cursor.position
        finally:
            store.close()

    def last_counts(self) -> dict[str, Any]:
        store = self.h.store()
        try:
            last = store.cycles.last(f"shop:{self.h.sb.demo.shop_id}")
            assert last is not None
            return dict(last.counts)
        finally:
            store.close()


@pytest.fixture
def rig(harness: Harness) -> Rig:
    harness.sb.add_store("us-main")
    tiktok = HostileTikTok.install(harness.sb.tiktok_server)
    magento = HostileMagento.install(harness.sb.magento_server)
    orders = [
        harness.sb.place_order([{"sku": f"TEE-{i}", "qty": 2, "price": 10.0},
                                {"sku": f"CAP-{i}", "qty": 1, "price": 4.0}])
        for i in range(3)
    ]  # fmt: skip
    return Rig(harness, tiktok, magento, orders)


def _items(change: Callable[[list[Any]], Any]) -> Callable[[dict[str, Any]], Any]:
    """A corruption of an order's item rows (Magento ``items``, TikTok ``line_items``)."""

    def corrupt(order: dict[str, Any]) -> dict[str, Any]:
        key = "items" if "items" in order else "line_items"
        order[key] = change(order[key])
        return order

    return corrupt


def _first_item(**values: Any) -> Callable[[dict[str, Any]], Any]:
    return _items(lambda rows: [{**rows[0], **values}, *rows[1:]])


@dataclass(frozen=True)
class Case:
    """One payload defect on the victim order, and what must follow from it."""

    corrupt: Callable[[Rig], None]
    attention: str | None  # the victim's row needs attention naming this; None: done
    first_rc: int  # exit code of the first run (a new attention item or failure: 1)
    # An unreadable record of an order TikTok shows CANCELLED: the order search fallback
    # still refunds the order (as ``order-<id>``), once; the record needs attention.
    fallback: bool = False


CASES: dict[str, Case] = {
    # TikTok order detail / search
    "tiktok order without status": Case(
        lambda r: r.tiktok.corrupt_order(r.victim.tiktok_order_id, drop("status")),
        "status is missing", 1),
    "tiktok order with a line listed twice": Case(
        lambda r: r.tiktok.corrupt_order(r.victim.tiktok_order_id,
                                         _items(lambda rows: rows + rows[:1])),
        "twice", 1),
    "tiktok order payment as PHP []": Case(
        lambda r: r.tiktok.corrupt_order(r.victim.tiktok_order_id, put(payment=[])),
        None, 0),
    "tiktok order without lines": Case(
        lambda r: r.tiktok.corrupt_order(r.victim.tiktok_order_id, put(line_items=[])),
        None, 0),
    # TikTok cancellation record (keyed: it has its cancel_id)
    "tiktok cancellation with update_time garbled": Case(
        lambda r: r.tiktok.corrupt_cancellation(
            put(update_time="yesterday"), tiktok_order_id=r.victim.tiktok_order_id),
        "update_time", 1, fallback=True),
    "tiktok cancellation with unicode digits in a time": Case(
        lambda r: r.tiktok.corrupt_cancellation(
            put(create_time=ARABIC_1700000000),
            tiktok_order_id=r.victim.tiktok_order_id),
        "create_time", 1, fallback=True),
    "tiktok cancellation with a negative refund": Case(
        lambda r: r.tiktok.corrupt_cancellation(
            put(refund_amount={"currency": "USD", "refund_total": "-24.00"}),
            tiktok_order_id=r.victim.tiktok_order_id),
        "negative", 1, fallback=True),
    # Magento order
    "magento order with items 'x'": Case(
        lambda r: r.magento.corrupt_order(r.victim.magento_entity_id, put(items="x")),
        "'items' is not a list", 1),
    "magento order with total_paid 'abc'": Case(
        lambda r: r.magento.corrupt_order(r.victim.magento_entity_id,
                                          put(total_paid="abc")),
        "'total_paid' is not a number", 1),
    "magento order with PHP [] for objects": Case(
        lambda r: r.magento.corrupt_order(r.victim.magento_entity_id,
                                          put(extension_attributes=[], payment=[])),
        None, 0),
    "magento order without items": Case(
        lambda r: r.magento.corrupt_order(r.victim.magento_entity_id, put(items=[])),
        "no items", 1),
    "magento order with a fractional qty": Case(
        lambda r: r.magento.corrupt_order(
            r.victim.magento_entity_id, _first_item(qty_ordered=1.5, qty_invoiced=1.5)),
        "whole units", 1),
    "magento order with a negative qty": Case(
        lambda r: r.magento.corrupt_order(r.victim.magento_entity_id,
                                          _first_item(qty_invoiced=-2)),
        "negative", 1),
    "magento order with an item row listed twice": Case(
        lambda r: r.magento.corrupt_order(r.victim.magento_entity_id,
                                          _items(lambda rows: rows + rows[:1])),
        "listed twice", 1),
    "magento order with unicode digits in a qty": Case(
        lambda r: r.magento.corrupt_order(r.victim.magento_entity_id,
                                          _first_item(qty_refunded="\u0660")),
        "qty_refunded", 1),
    # HTML from whatever stands in front of the platform: retried, never attention
    "tiktok order detail answers a captive portal (200 HTML)": Case(
        lambda r: r.tiktok.html(r"GET /order/\{v\}/orders", 200, count=2), None, 0),
    "tiktok cancellation search answers a proxy 502 page": Case(
        lambda r: r.tiktok.html(TIKTOK_CANCEL_SEARCH, 502, count=1), None, 0),
    "magento order read answers a captive portal (200 HTML)": Case(
        lambda r: r.magento.html(r"GET orders/\{id\}", 200, count=1), None, 0),
    "magento refund answered by a proxy 502 page": Case(
        lambda r: r.magento.html(r"POST order/\{id\}/refund", 502, count=1), None, 0),
    "magento refund answered by a captive portal (200 HTML)": Case(
        lambda r: r.magento.html(r"POST order/\{id\}/refund", 200, count=1), None, 0),
    # Duplicates and huge pages
    "tiktok cancellation page repeating every record 30 times": Case(
        lambda r: r.tiktok.rewrite_json(TIKTOK_CANCEL_SEARCH, _repeat(30)), None, 0),
}  # fmt: skip


def _repeat(times: int) -> Callable[[Any], Any]:
    def change(payload: Any) -> Any:
        payload["data"]["cancellations"] = payload["data"]["cancellations"] * times
        return payload

    return change


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_one_bad_payload_spoils_only_its_own_order(rig: Rig, case: Case) -> None:
    """The victim ends done or needing attention with the reason; the others are
    refunded once each, and no refund is ever sent twice."""
    for order in rig.orders:
        rig.h.sb.tiktok.buyer_cancel(order.tiktok_order_id)
    case.corrupt(rig)

    first, _ = rig.h.run("run", "--once")
    second, _ = rig.h.run("run", "--once")

    assert (first, second) == (case.first_rc, 0)
    victim = rig.rows(rig.victim)
    assert len(victim) == 1 + case.fallback
    if case.attention is None:
        assert victim[0].state == "done"
    else:
        assert victim[0].state == "needs_attention"
        assert case.attention in (victim[0].reason or "")
    if case.fallback:
        assert (victim[1].state, victim[1].tiktok_cancel_id) == (
            "done",
            f"order-{rig.victim.tiktok_order_id}",
        )
    refunded = case.attention is None or case.fallback
    assert rig.refunded() == [True, refunded, True]
    assert rig.h.refund_posts() == 2 + refunded
    assert len(rig.h.memos(rig.victim.magento_entity_id)) == refunded
    for order in (rig.orders[0], rig.orders[2]):
        assert [e.state for e in rig.rows(order)] == ["done"]
        assert len(rig.h.memos(order.magento_entity_id)) == 1


def test_partial_cancellation_listing_one_line_twice_refunds_nothing(rig: Rig) -> None:
    """A record naming one cancelled line twice would refund two units for one: it needs
    attention instead, and no refund is sent."""
    rig.h.sb.tiktok.partial_cancel(
        rig.victim.tiktok_order_id, rig.lines(rig.victim)[:1]
    )
    rig.tiktok.corrupt_cancellation(
        lambda c: {**c, "cancel_line_items": c["cancel_line_items"] * 2},
        tiktok_order_id=rig.victim.tiktok_order_id,
    )

    rc, _ = rig.h.run("run", "--once")

    assert rc == 1
    [row] = rig.rows(rig.victim)
    assert row.state == "needs_attention"
    assert "twice" in (row.reason or "")
    assert rig.h.refund_posts() == 0


def test_a_captive_portal_on_every_magento_read_fails_retryably_then_heals(
    rig: Rig,
) -> None:
    """A portal answering every Magento read is an outage, not the orders' fault: no
    attention item, no refund, cursor kept; once it is gone each order is refunded once."""
    for order in rig.orders:
        rig.h.sb.tiktok.buyer_cancel(order.tiktok_order_id)
    rig.magento.html(r"GET orders(/\{id\})?", 200)

    rc, _ = rig.h.run("run", "--once", retry_backoff_seconds=0)

    assert rc == 1
    assert all(e.state == "failed" for e in rig.h.ledger())
    assert rig.h.refund_posts() == 0
    assert rig.cursor(B_STREAM) is None

    rig.magento.clear()
    rc, _ = rig.h.run("run", "--once", retry_backoff_seconds=0)

    assert rc == 0
    assert rig.refunded() == [True, True, True]
    assert rig.h.refund_posts() == 3


def test_unicode_skus_match_in_either_normal_form(rig: Rig) -> None:
    """A SKU TikTok sends decomposed (NFD) still matches Magento's composed one: the
    partial cancellation refunds that row, one unit."""
    sku = "TÉE-ÉTÉ-☃"
    placed = rig.h.sb.place_order([{"sku": sku, "qty": 2, "price": 10.0},
                                   {"sku": "CAP", "qty": 1, "price": 4.0}])  # fmt: skip
    line = next(
        line["id"]
        for line in rig.h.sb.tiktok.order(placed.tiktok_order_id)["line_items"]
        if line["seller_sku"] == sku
    )
    rig.h.sb.tiktok.partial_cancel(placed.tiktok_order_id, [line])
    nfd = unicodedata.normalize("NFD", sku)
    assert nfd != sku
    rig.tiktok.corrupt_cancellation(
        lambda c: {**c, "cancel_line_items": [
            {**item, "seller_sku": nfd} for item in c["cancel_line_items"]]},
        tiktok_order_id=placed.tiktok_order_id,
    )  # fmt: skip

    rc, _ = rig.h.run("run", "--once")

    assert rc == 0
    [memo] = rig.h.memos(placed.magento_entity_id)
    refunded = {item["sku"]: float(item["qty"]) for item in memo["items"]}
    assert refunded == {sku: 1.0}


# ----------------------------------------------------------------------------- cursor


def test_partial_cancellation_without_cancel_id_holds_the_cursor_until_fixed(
    rig: Rig,
) -> None:
    """A record without an id cannot be recorded: every run reports it (exit 1) and
    keeps the cursor at its update_time, the others are refunded; once TikTok sends the
    id, it is refunded once and the cursor moves on."""
    rig.h.sb.tiktok.partial_cancel(
        rig.victim.tiktok_order_id, rig.lines(rig.victim)[:1]
    )
    rig.h.sb.tiktok.buyer_cancel(rig.orders[0].tiktok_order_id)
    rig.tiktok.corrupt_cancellation(drop("cancel_id"),
                                    tiktok_order_id=rig.victim.tiktok_order_id)  # fmt: skip
    [record] = rig.h.sb.tiktok.cancellations(rig.victim.tiktok_order_id)

    # The smallest overlap allowed (30 s). It covers the record anyway while these runs
    # follow each other within seconds, so the cursor checks below are what prove the hold.
    codes = [rig.h.run("run", "--once", overlap_seconds=30)[0] for _ in range(3)]

    assert codes == [1, 1, 1]
    assert rig.refunded() == [True, False, False]
    assert rig.rows(rig.victim) == []
    assert rig.cursor(B_STREAM) == record["update_time"]
    assert rig.last_counts()[f"held_at.{B_STREAM}"] == record["update_time"]

    rig.tiktok.clear()
    rc, _ = rig.h.run("run", "--once", overlap_seconds=30)

    assert rc == 0
    assert rig.refunded() == [True, True, False]
    [row] = rig.rows(rig.victim)
    assert (row.state, row.tiktok_cancel_id) == ("done", record["cancel_id"])
    assert rig.h.refund_posts() == 2
    position = rig.cursor(B_STREAM)
    assert position is not None
    assert position > record["update_time"]
    assert f"held_at.{B_STREAM}" not in rig.last_counts()


def test_record_without_id_or_time_holds_the_pages_cursor_move(rig: Rig) -> None:
    """With neither id nor update_time readable, the cursor stays where the page began
    (here the first run's lookback start), though a later record on it was refunded."""
    rig.h.sb.tiktok.partial_cancel(
        rig.victim.tiktok_order_id, rig.lines(rig.victim)[:1]
    )
    rig.h.sb.tiktok.partial_cancel(rig.orders[2].tiktok_order_id,
                                   rig.lines(rig.orders[2])[:1])  # fmt: skip
    rig.tiktok.corrupt_cancellation(drop("cancel_id", "update_time"),
                                    tiktok_order_id=rig.victim.tiktok_order_id)  # fmt: skip

    codes = [rig.h.run("run", "--once", overlap_seconds=30)[0] for _ in range(2)]

    assert codes == [1, 1]
    assert rig.refunded() == [False, False, True]
    held = rig.cursor(B_STREAM)
    assert held is not None
    assert held < time.time() - 23 * 3600
    rig.tiktok.clear()
    assert rig.h.run("run", "--once", overlap_seconds=30)[0] == 0
    assert rig.refunded() == [False, True, True]
    assert rig.h.refund_posts() == 2
    position = rig.cursor(B_STREAM)
    assert position is not None
    assert position > time.time() - 60


def test_unreadable_cancelled_order_in_the_cross_check_holds_the_cursor(
    rig: Rig,
) -> None:
    """An order TikTok shows CANCELLED with no record, unreadable in the order search, is
    not skipped: it holds the cursor and is decided once it can be read."""
    rig.h.sb.tiktok.buyer_cancel(rig.victim.tiktok_order_id)
    [record] = rig.h.sb.tiktok.cancellations(rig.victim.tiktok_order_id)
    rig.tiktok.corrupt_cancellation(drop("cancel_id", "update_time"),
                                    tiktok_order_id=rig.victim.tiktok_order_id)  # fmt: skip
    rig.tiktok.corrupt_order(rig.victim.tiktok_order_id, put(update_time="soon"))

    codes = [rig.h.run("run", "--once", overlap_seconds=30)[0] for _ in range(2)]

    assert codes == [1, 1]
    assert rig.refunded() == [False, False, False]
    held = rig.cursor(B_STREAM)
    assert held is None or held <= record["update_time"]
    rig.tiktok.clear()
    assert rig.h.run("run", "--once", overlap_seconds=30)[0] == 0
    assert rig.refunded() == [False, True, False]
    assert rig.h.refund_posts() == 1


@pytest.mark.parametrize("endpoint", [TIKTOK_CANCEL_SEARCH, ORDER_SEARCH],
                         ids=["cancellation search", "order search"])  # fmt: skip
def test_endless_page_tokens_stop_at_the_page_cap(rig: Rig, endpoint: str) -> None:
    """A search handing out a fresh page token forever stops after MAX_SCAN_PAGES pages
    (a warning, not a failure): each order is refunded once, the run ends, and the
    cursor of that search (the cancellations', or the cross-check's own) stops where
    the scan got."""
    for order in rig.orders:
        rig.h.sb.tiktok.buyer_cancel(order.tiktok_order_id)
    rig.tiktok.endless_pages(endpoint)

    rc, _ = rig.h.run("run", "--once")

    assert rc == 0
    assert rig.h.sb.tiktok_server.journal.count(endpoint) == MAX_SCAN_PAGES
    assert rig.last_counts()["scan_capped"] == 1
    assert rig.refunded() == [True, True, True]
    assert rig.h.refund_posts() == 3
    last = max(c["update_time"] for c in rig.h.sb.tiktok.cancellations())
    stream = B_STREAM if endpoint == TIKTOK_CANCEL_SEARCH else CROSS_CHECK_STREAM
    position = rig.cursor(stream)
    assert position is not None
    assert position <= last


# ----------------------------------------------------------------------------- direction A


def test_credit_memo_without_entity_id_holds_the_keyset_cursor(
    harness: Harness,
) -> None:
    """A merchant memo whose id cannot be read holds the keyset cursor just before it
    (the memo after it is still handled), is reported every run, and cancels on TikTok
    once it is readable."""
    harness.sb.add_store("us-main", refund_to_cancel=True)
    magento = HostileMagento.install(harness.sb.magento_server)
    orders = [
        harness.sb.place_order([{"sku": f"A{i}", "qty": 1, "price": 5.0}])
        for i in range(3)
    ]
    memos = [
        harness.sb.magento.create_credit_memo(o.magento_entity_id, None) for o in orders
    ]
    magento.corrupt_memo(memos[1], drop("entity_id"))

    codes = [harness.run("run", "--once")[0] for _ in range(2)]

    assert codes == [1, 1]
    assert harness.cancel_posts() == 2
    assert [harness.sb.tiktok.order(o.tiktok_order_id)["status"] for o in orders] == [
        "CANCELLED", "AWAITING_SHIPMENT", "CANCELLED"]  # fmt: skip
    store = harness.store()
    try:
        cursor = store.cursors.get(f"shop:{harness.sb.demo.shop_id}", A_STREAM)
    finally:
        store.close()
    assert cursor is not None
    assert cursor.position == memos[0]

    magento.clear()
    rc, _ = harness.run("run", "--once")

    assert rc == 0
    assert harness.sb.tiktok.order(orders[1].tiktok_order_id)["status"] == "CANCELLED"
    assert harness.cancel_posts() == 3


# ----------------------------------------------------------------------------- the scan


def _scan(start: int, stored: int | None) -> tuple[CursorScan, CycleReport]:
    """A scan over a stub engine: it only reports and logs."""
    report = CycleReport("us-main", "shop:1", "run", datetime.now(UTC))
    engine = SimpleNamespace(
        report=report, log=structlog.get_logger("test"), flights=Flights(1)
    )
    return CursorScan(cast(Engine, engine), Direction.TIKTOK_TO_MAGENTO,
                      start=start, stored=stored), report  # fmt: skip


def test_a_capped_scan_that_cannot_move_releases_its_hold() -> None:
    """When the cap is hit and the hold would keep the cursor where it is, the hold
    gives way (logged at error level, counted as a failure): newer items must not
    stall behind an item nobody fixes."""
    scan, report = _scan(start=700, stored=1000)
    unkeyed = [Unreadable(None, "cancel_id is missing", position=990)]
    with capture_logs() as logs:
        for number, _page in enumerate(scan.pages(iter(range(10**6)), "cancellations")):
            scan.read([1000 + number], unkeyed if number == 0 else [])
        position = scan.finish(5000)
    assert position == 1000 + MAX_SCAN_PAGES - 1
    assert (report.counts["scan_capped"], report.counts["hold_released"]) == (1, 1)
    assert report.failures == 1
    assert [e["event"] for e in logs if e["log_level"] == "error"] == [
        "scan.hold_released"
    ]


def test_a_capped_scan_that_moves_keeps_its_hold() -> None:
    """A hold past the stored cursor still makes progress: it is kept, capped or not,
    and its position is in the cycle's counts."""
    scan, report = _scan(start=700, stored=1000)
    for number, _page in enumerate(scan.pages(iter(range(10**6)), "cancellations")):
        unkeyed = [Unreadable(None, "no id", position=None)] if number == 5 else []
        scan.read([1001 + number], unkeyed)
    assert scan.finish(5000) == 1005  # where the held item's page began
    assert report.counts[f"held_at.{B_STREAM}"] == 1005
    assert report.counts["hold_released"] == 0


def test_credit_memo_search_ignoring_its_keyset_filter_stops_the_cycle_not_loops(
    harness: Harness,
) -> None:
    """A store answering every memo search with its first full page (the last id never
    grows) ends the cycle with an error instead of looping; direction B still ran, and
    once the store behaves every memo is handled once."""
    harness.sb.add_store("us-main", refund_to_cancel=True)
    magento = HostileMagento.install(harness.sb.magento_server)
    orders = [
        harness.sb.place_order([{"sku": f"M{i}", "qty": 1, "price": 1.0}])
        for i in range(101)
    ]
    for o in orders:
        harness.sb.magento.create_credit_memo(o.magento_entity_id, None)
    cancelled = harness.sb.place_order([{"sku": "B", "qty": 1, "price": 2.0}])
    harness.sb.tiktok.buyer_cancel(cancelled.tiktok_order_id)
    magento.stuck_keyset()

    rc, _ = harness.run("run", "--once")

    assert rc == 1
    assert harness.sb.magento_server.journal.count("GET creditmemos") == 2
    assert harness.refund_posts() == 1  # direction B ran before the memo scan failed
    assert harness.cancel_posts() == 0

    magento.clear()
    rc, _ = harness.run("run", "--once")

    assert rc == 0
    assert harness.cancel_posts() == 101
