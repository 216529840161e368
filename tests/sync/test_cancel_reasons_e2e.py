"""Cancel reasons TikTok accepts, direction A (issue 8, point 7), through the CLI.

A family with no key for the order's status needs attention naming the keys that would
work; a key TikTok refuses is checked once against the order's aftersale eligibility and
replaced only by a key of the configured family, never another one.
"""

from __future__ import annotations

from .conftest import Harness

ADDRESS = "seller_cancel_paid_reason_address_not_deliver"
ELIGIBILITY = r"GET /return_refund/\{v\}/orders/\{order_id\}/aftersale_eligibility"


def _eligibility_calls(harness: Harness) -> int:
    return harness.sb.tiktok_server.journal.count(ELIGIBILITY)


def _seller_reasons(harness: Harness, tiktok_order_id: str) -> list[object]:
    return [
        c["cancel_reason"]
        for c in harness.sb.tiktok.cancellations(tiktok_order_id)
        if c["role"] == "SELLER"
    ]


def test_retired_key_is_replaced_by_the_same_family_from_eligibility(
    harness: Harness,
) -> None:
    """TikTok answers 25001020 for the table's key: eligibility is asked once and the
    cancel is sent again with its listed successor of the same family."""
    successor = ADDRESS + "_v2"
    harness.sb.tiktok.replace_reason(ADDRESS, successor)
    harness.sb.add_store("us-main", refund_to_cancel=True)
    placed = harness.sb.place_order([{"sku": "A", "qty": 1, "price": 5.0}])
    harness.sb.magento.create_credit_memo(placed.magento_entity_id, None)

    rc, _ = harness.run("run", "--once")

    assert rc == 0
    assert harness.sb.tiktok.order(placed.tiktok_order_id)["status"] == "CANCELLED"
    assert _seller_reasons(harness, placed.tiktok_order_id) == [successor]
    assert harness.cancel_posts() == 2
    assert _eligibility_calls(harness) == 1
    (entry,) = harness.ledger()
    assert (entry.state, entry.attempts) == ("done", 2)
    rc, out = harness.run("explain", placed.tiktok_order_id)
    assert rc == 0
    assert "25001020" in out  # the timeline says why the key changed


def test_refused_key_without_a_same_family_successor_needs_attention(
    harness: Harness,
) -> None:
    """When eligibility lists no key of the configured family the order needs attention
    naming the keys TikTok offers; no other family (e.g. out of stock) is used."""
    harness.sb.tiktok.retire_reason(ADDRESS)
    harness.sb.add_store("us-main", refund_to_cancel=True)
    placed = harness.sb.place_order([{"sku": "A", "qty": 1, "price": 5.0}])
    harness.sb.magento.create_credit_memo(placed.magento_entity_id, None)

    rc, _ = harness.run("run", "--once")
    rc2, _ = harness.run("run", "--once")

    assert (rc, rc2) == (1, 0)
    assert harness.cancel_posts() == 1
    assert _eligibility_calls(harness) == 1
    assert harness.sb.tiktok.zeroed_skus(harness.sb.demo.shop_id) == set()
    (attention,) = harness.status()["stores"][0]["needs_attention"]
    assert "25001020" in attention["reason"]
    assert "seller_cancel_reason_wrong_price" in attention["reason"]
    assert "address_not_deliver" in attention["reason"]


def test_unpaid_order_without_a_key_of_the_family_names_the_keys_that_work(
    harness: Harness,
) -> None:
    """address_not_deliver has no UNPAID key: the order needs attention naming the
    UNPAID keys for the market, and nothing is sent."""
    harness.sb.add_store("us-main", refund_to_cancel=True)
    placed = harness.sb.place_order(
        [{"sku": "A", "qty": 1, "price": 5.0}], status="UNPAID"
    )
    harness.sb.magento.create_credit_memo(placed.magento_entity_id, None)

    rc, _ = harness.run("run", "--once")

    assert rc == 1
    assert harness.cancel_posts() == 0
    (attention,) = harness.status()["stores"][0]["needs_attention"]
    assert "UNPAID" in attention["reason"]
    assert "seller_cancel_unpaid_reason_wrong_price" in attention["reason"]


def test_check_reports_a_status_without_a_key_as_information(
    harness: Harness,
) -> None:
    """The default reason has no UNPAID key: `check` says so once as info, not a warning."""
    harness.sb.add_store("us-main", refund_to_cancel=True)

    rc, out = harness.run("check")

    assert rc == 0, out
    reason_lines = [line for line in out.splitlines() if "tiktok cancel reason" in line]
    assert len(reason_lines) == 1
    assert reason_lines[0].strip().startswith("[info]")
    assert "UNPAID" in reason_lines[0]
    assert not [line for line in out.splitlines() if "[warn] tiktok" in line]
