"""Holds where a merchant looks: status (text and JSON) and explain, through the CLI.

A buyer's pending request holds the Magento order (hold_on_request); status lists it as
on hold by cancelsync until the request is answered, and explain names the hold and its
release in words.
"""

from __future__ import annotations

import re

from cancelsync.sandbox.harness import PlacedOrder as Placed

from .conftest import Harness

WAITING = "waiting for the buyer's request to be answered"


def _held(harness: Harness) -> tuple[Placed, Placed, str]:
    """A hold_on_request store with two orders: the first one's buyer asks to cancel
    (pending), and one run holds it."""
    harness.sb.add_store("us-main", hold_on_request=True)
    held = harness.sb.place_order([{"sku": "TEE", "qty": 1, "price": 10.0}])
    other = harness.sb.place_order([{"sku": "CAP", "qty": 1, "price": 8.0}])
    cancel_id = harness.sb.tiktok.buyer_cancel(held.tiktok_order_id, pending=True)
    rc, _ = harness.run("run", "--once")
    assert rc == 0
    return held, other, cancel_id


def test_status_lists_the_held_order_until_the_request_is_answered(
    harness: Harness,
) -> None:
    """While the request is pending, status names the held order (#increment, TikTok
    id, since when); once rejected and released, none is on hold."""
    held, other, cancel_id = _held(harness)

    rc, text = harness.run("status")

    assert rc == 0
    assert f"  on hold by cancelsync: 1 order(s) {WAITING}\n" in text
    line = re.search(
        rf"    Magento #{held.magento_increment_id} \(TikTok order "
        rf"{held.tiktok_order_id}\) since \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d UTC "
        r"\((just now|\d+ seconds? ago)\)\n",
        text,
    )
    assert line, text
    assert f"#{other.magento_increment_id}" not in text

    harness.sb.tiktok.seller_center_reject(cancel_id)
    harness.run("run", "--once")
    rc, text = harness.run("status")

    assert rc == 0
    assert "  on hold by cancelsync: none\n" in text
    assert f"#{held.magento_increment_id}" not in text


def test_status_json_carries_the_held_orders(harness: Harness) -> None:
    """status --json: hold_on_request and each held order's ids and since (stored ISO
    time beside its readable form); empty once the hold is released."""
    held, _, cancel_id = _held(harness)

    (store,) = harness.status()["stores"]

    assert store["hold_on_request"] is True
    (hold,) = store["on_hold"]
    assert {k: hold[k] for k in ("tiktok_order_id", "tiktok_cancel_id",
                                 "magento_entity_id", "magento_increment_id")} == {
        "tiktok_order_id": held.tiktok_order_id, "tiktok_cancel_id": cancel_id,
        "magento_entity_id": held.magento_entity_id,
        "magento_increment_id": held.magento_increment_id,
    }  # fmt: skip
    assert hold["held_since"].endswith("+00:00")
    assert hold["held_since_iso"].endswith(" UTC")

    harness.sb.tiktok.buyer_withdraw(cancel_id)
    harness.run("run", "--once")

    assert harness.status()["stores"][0]["on_hold"] == []


def test_status_says_nothing_of_holds_when_off(harness: Harness) -> None:
    """Without hold_on_request (and no hold left), status has no holds line."""
    harness.sb.add_store("us-main")
    placed = harness.sb.place_order([{"sku": "TEE", "qty": 1, "price": 10.0}])
    harness.sb.tiktok.buyer_cancel(placed.tiktok_order_id, pending=True)
    harness.run("run", "--once")

    rc, text = harness.run("status")

    assert rc == 0
    assert "on hold" not in text
    assert harness.status()["stores"][0]["on_hold"] == []


def test_explain_names_the_hold_and_its_release(harness: Harness) -> None:
    """explain says in words what the hold and release actions did."""
    held, _, cancel_id = _held(harness)
    harness.sb.tiktok.seller_center_reject(cancel_id)
    harness.run("run", "--once")

    rc, text = harness.run("explain", held.tiktok_order_id)

    assert rc == 0
    assert "    what: held in Magento while the buyer's request is pending\n" in text
    assert "    what: hold released\n" in text
