"""`run --once --dry-run` prints its plan in SKUs, quantities and sentences, through the CLI."""

# The multiplication sign in the expected lines is the output under test, not a
# look-alike x.
# ruff: noqa: RUF001, RUF002

from __future__ import annotations

from cancelsync.plan_text import counts_text, describe, in_reading_order

from .conftest import Harness


def _plan_lines(out: str) -> list[str]:
    return [line.strip() for line in out.splitlines() if line.startswith("  ")]


def _magento_number(harness: Harness, magento_entity_id: int) -> str:
    return str(harness.sb.magento.order(magento_entity_id)["increment_id"])


def test_refund_plan_names_skus_quantities_and_restock(harness: Harness) -> None:
    """A buyer's cancel is planned as a refund of 2 × SKU-A, 1 × SKU-B, no item ids."""
    harness.sb.add_store("us-main", restock=True)
    placed = harness.sb.place_order(
        [
            {"sku": "SKU-A", "qty": 2, "price": 10.0},
            {"sku": "SKU-B", "qty": 1, "price": 5.0},
        ],
        shipping_fee=5.0,
    )
    harness.sb.tiktok.buyer_cancel(placed.tiktok_order_id)
    number = _magento_number(harness, placed.magento_entity_id)

    rc, out = harness.run("run", "--once", "--dry-run")

    assert rc == 0
    assert "[dry run] us-main: ok — 1 seen, 1 to write" in out
    assert _plan_lines(out) == [
        f"would refund Magento order #{number} (TikTok {placed.tiktok_order_id}): "
        "2 × SKU-A, 1 × SKU-B and the remaining shipping (30.00), offline credit "
        "memo, return to stock"
    ]
    assert harness.memos(placed.magento_entity_id) == []


def test_partial_refund_plan_without_restock(harness: Harness) -> None:
    """One cancelled line is planned as 1 × that SKU, no shipping, not restocked."""
    harness.sb.add_store("us-main", restock=False)
    placed = harness.sb.place_order(
        [
            {"sku": "SOCKS", "qty": 3, "price": 4.0},
            {"sku": "SHOE", "qty": 1, "price": 50.0},
        ]
    )
    order = harness.sb.tiktok.order(placed.tiktok_order_id)
    sock = next(
        line["id"] for line in order["line_items"] if line["seller_sku"] == "SOCKS"
    )
    harness.sb.tiktok.partial_cancel(placed.tiktok_order_id, [sock])

    rc, out = harness.run("run", "--once", "--dry-run")

    assert rc == 0
    (line,) = _plan_lines(out)
    assert line.endswith(
        f"(TikTok {placed.tiktok_order_id}): 1 × SOCKS (4.00), offline credit memo, "
        "not returned to stock"
    )


def test_tiktok_cancel_plan_names_skus_and_reason(harness: Harness) -> None:
    """A full credit memo is planned as a TikTok cancel of its units, with the reason."""
    harness.sb.add_store("us-main", refund_to_cancel=True)
    placed = harness.sb.place_order([{"sku": "SKU-A", "qty": 2, "price": 5.0}])
    harness.sb.magento.create_credit_memo(placed.magento_entity_id, None)
    number = _magento_number(harness, placed.magento_entity_id)

    rc, out = harness.run("run", "--once", "--dry-run")

    assert rc == 0
    assert _plan_lines(out) == [
        f"would cancel TikTok order {placed.tiktok_order_id} (Magento #{number}): "
        "2 × SKU-A (reason: seller_cancel_paid_reason_address_not_deliver)"
    ]


def test_line_cancel_plan_says_not_the_whole_order(harness: Harness) -> None:
    """With cancel_items a partial memo is planned as its SKUs only."""
    harness.sb.add_store(
        "us-main", refund_to_cancel=True, partial_refunds="cancel_items"
    )
    placed = harness.sb.place_order(
        [{"sku": "A", "qty": 1, "price": 5.0}, {"sku": "B", "qty": 1, "price": 9.0}]
    )
    harness.sb.magento.create_credit_memo(
        placed.magento_entity_id, {"A": 1}, shipping_amount=0
    )

    rc, out = harness.run("run", "--once", "--dry-run")

    assert rc == 0
    (line,) = _plan_lines(out)
    assert line.startswith(
        f"would cancel 1 × A of TikTok order {placed.tiktok_order_id}"
    )
    assert "not the whole order (reason: seller_cancel_reason_out_of_stock" in line


def test_attention_is_a_sentence_after_the_writes(harness: Harness) -> None:
    """What needs a person reads as the decision's reason, listed after the writes."""
    harness.sb.add_store("us-main", refund_to_cancel=True)
    shipped = harness.sb.place_order([{"sku": "A", "qty": 1, "price": 5.0}])
    harness.sb.tiktok.ship(shipped.tiktok_order_id)
    harness.sb.magento.create_credit_memo(shipped.magento_entity_id, None)
    cancelled = harness.sb.place_order([{"sku": "B", "qty": 1, "price": 5.0}])
    harness.sb.tiktok.buyer_cancel(cancelled.tiktok_order_id)
    number = _magento_number(harness, shipped.magento_entity_id)

    rc, out = harness.run("run", "--once", "--dry-run")

    assert rc == 1
    header = next(line for line in out.splitlines() if line.startswith("[dry run]"))
    assert "1 would need attention" in header
    assert "cancelsync status" not in header  # a dry run stores nothing to look at
    first, second = _plan_lines(out)
    assert first.startswith("would refund Magento order")
    assert second.startswith(
        f"would need attention: Magento order #{number} "
        f"(TikTok {shipped.tiktok_order_id}) — TikTok order is "
    )
    assert "can no longer be cancelled" in second
    assert "item_id" not in out
    assert "needs_attention" not in out


def test_uninvoiced_order_plans_a_magento_cancel(harness: Harness) -> None:
    """An order with nothing invoiced is planned as a cancel of its open units."""
    harness.sb.add_store("us-main")
    placed = harness.sb.place_order(
        [{"sku": "MUG", "qty": 3, "price": 8.0}], invoiced=False
    )
    harness.sb.tiktok.buyer_cancel(placed.tiktok_order_id)

    rc, out = harness.run("run", "--once", "--dry-run")

    assert rc == 0
    (line,) = _plan_lines(out)
    assert line.startswith("would cancel Magento order #")
    assert line.endswith("(nothing invoiced, so no credit memo): 3 × MUG")


def test_describe_falls_back_to_what_is_known() -> None:
    """Unknown plan kinds, missing SKUs and missing ids still give a readable line."""
    assert describe(
        {"decision": "apply", "action": "magento_frobnicate", "plan": {},
         "tiktok_order_id": "576"}
    ) == "would magento frobnicate: TikTok order 576"  # fmt: skip
    assert describe(
        {"decision": "skipped", "reason": "not ours", "magento_creditmemo_id": 9}
    ) == ("would skip: Magento credit memo 9 — not ours")
    assert describe(
        {"decision": "apply", "plan": {"kind": "tiktok_cancel", "cancel_reason": "r"},
         "tiktok_order_id": "576"}
    ) == "would cancel TikTok order 576: the whole order (reason: r)"  # fmt: skip


def test_counts_and_order_read_as_words() -> None:
    """Counts use words, and writes come before attention, skips and no-ops."""
    assert counts_text(
        {"would_apply": 2, "seen": 5, "skipped": 3, "unreadable": 1}
    ) == ("5 seen, 2 to write, 3 would skip, 1 unreadable")
    assert counts_text({}) == "nothing new"
    items = [{"decision": d} for d in ("done", "skipped", "needs_attention", "apply")]
    assert [i["decision"] for i in in_reading_order(items)] == [
        "apply",
        "needs_attention",
        "skipped",
        "done",
    ]
