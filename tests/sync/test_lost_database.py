"""The database is lost, replaced, or two databases sync the same stores: the remote
side (our marker on credit memos, TikTok's cancelled lines) keeps every write single."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

from cancelsync.cli import main
from cancelsync.sandbox.common import Fault

from .conftest import BOTH_CONCURRENCIES, Harness


def _forget(harness: Harness) -> None:
    """Delete the database as a lost disk or a botched restore would."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{harness.folder / 'cancelsync.db'}{suffix}").unlink(missing_ok=True)


def _run_elsewhere(harness: Harness, folder: Path, *args: str) -> tuple[int, str]:
    """Run the CLI with the same sandbox but a config (and database) in ``folder``."""
    config = harness.sb.write_config(folder / "cancelsync.toml")
    out = io.StringIO()
    rc = main(["--config", str(config), *args], stdout=out)
    return rc, out.getvalue()


def _partial_buyer_cancel(harness: Harness) -> Any:
    """Three units of A, the buyer cancels one: a partial refund Magento would repeat."""
    placed = harness.sb.place_order([{"sku": "A", "qty": 3, "price": 5.0}])
    line = harness.sb.tiktok.order(placed.tiktok_order_id)["line_items"][0]["id"]
    harness.sb.tiktok.buyer_cancel(placed.tiktok_order_id, line_ids=[line])
    return placed


@BOTH_CONCURRENCIES
def test_lost_database_never_refunds_a_partial_cancel_twice(harness: Harness) -> None:
    """After the database is deleted, the re-read cancellation finds its marked credit
    memo in Magento and is recorded done without a second refund."""
    harness.sb.add_store("us-main")
    placed = _partial_buyer_cancel(harness)
    assert harness.run("run", "--once")[0] == 0
    assert harness.refund_posts() == 1

    _forget(harness)
    rc, _ = harness.run("run", "--once")

    assert rc == 0
    assert harness.refund_posts() == 1
    memos = harness.memos(placed.magento_entity_id)
    assert len(memos) == 1
    rc, out = harness.run("explain", placed.tiktok_order_id)
    assert "already records this cancellation" in out


@BOTH_CONCURRENCIES
def test_two_databases_on_one_store_refund_once(
    harness: Harness, tmp_path: Path
) -> None:
    """A second worker with its own database (a misconfiguration) writes nothing twice
    and says another worker is active."""
    harness.sb.add_store("us-main")
    placed = _partial_buyer_cancel(harness)
    assert harness.run("run", "--once")[0] == 0

    other = tmp_path / "other"
    other.mkdir()
    rc, _ = _run_elsewhere(harness, other, "run", "--once")

    assert rc == 0
    assert harness.refund_posts() == 1
    assert len(harness.memos(placed.magento_entity_id)) == 1
    status = json.loads(_run_elsewhere(harness, other, "status", "--json")[1])
    done = status["stores"][0]["actions"]["done"]
    assert done == 1


@BOTH_CONCURRENCIES
def test_lost_database_never_cancels_more_tiktok_lines(harness: Harness) -> None:
    """With cancel_items, a memo re-read after the database is lost finds its units
    already seller-cancelled on TikTok and cancels no further line."""
    harness.sb.add_store(
        "us-main", refund_to_cancel=True, partial_refunds="cancel_items"
    )
    placed = harness.sb.place_order(
        [{"sku": "A", "qty": 2, "price": 5.0}, {"sku": "B", "qty": 1, "price": 9.0}]
    )
    harness.sb.magento.create_credit_memo(
        placed.magento_entity_id, {"A": 1}, shipping_amount=0
    )
    assert harness.run("run", "--once")[0] == 0
    assert harness.cancel_posts() == 1

    _forget(harness)
    rc, _ = harness.run("run", "--once")

    assert rc == 0
    assert harness.cancel_posts() == 1
    lines = harness.sb.tiktok.order(placed.tiktok_order_id)["line_items"]
    cancelled = [line for line in lines if line["display_status"] == "CANCELLED"]
    assert len(cancelled) == 1


@BOTH_CONCURRENCIES
def test_lost_database_never_mirrors_our_own_line_cancel_back_as_a_refund(
    harness: Harness,
) -> None:
    """With cancel_items and include_seller_cancellations, a fresh database sees our own
    seller line cancel as a seller cancellation; the units it cancelled are the ones the
    merchant's memo refunded, so nothing is refunded (or restocked) again."""
    harness.sb.add_store(
        "us-main", refund_to_cancel=True, partial_refunds="cancel_items",
        include_seller_cancellations=True,
    )  # fmt: skip
    placed = harness.sb.place_order([{"sku": "A", "qty": 2, "price": 5.0}])
    harness.sb.magento.create_credit_memo(
        placed.magento_entity_id, {"A": 1}, shipping_amount=0
    )
    assert harness.run("run", "--once")[0] == 0
    assert harness.cancel_posts() == 1
    stock = harness.sb.magento.stock("A")

    _forget(harness)
    rc, _ = harness.run("run", "--once")

    assert rc == 0
    assert harness.refund_posts() == 0
    assert len(harness.memos(placed.magento_entity_id)) == 1
    assert harness.sb.magento.stock("A") == stock


@BOTH_CONCURRENCIES
def test_retry_after_an_unknown_outcome_re_reads_before_sending(
    harness: Harness,
) -> None:
    """A partial refund applied with its reply lost, whose re-read then failed, and
    which a person re-queued with `retry --all`, is found on Magento, not sent again."""
    harness.sb.add_store("us-main")
    placed = _partial_buyer_cancel(harness)
    harness.sb.magento_faults.next_calls(
        r"POST order/\{id\}/refund", Fault("lost_response")
    )
    harness.sb.magento_faults.next_calls(
        r"GET creditmemos", Fault("status", status=503), count=50
    )
    rc, _ = harness.run("run", "--once")
    assert rc == 1  # the refund's outcome could not be checked
    assert len(harness.memos(placed.magento_entity_id)) == 1
    harness.sb.magento_faults.clear()

    assert harness.run("retry", "--all")[0] == 0
    # Re-queued, but still held: the lost reply's write could have been slow.
    assert harness.run("run", "--once")[0] == 0
    assert harness.refund_posts() == 1
    _let_holds_pass(harness)
    rc, _ = harness.run("run", "--once")

    assert rc == 0
    assert harness.refund_posts() == 1
    assert len(harness.memos(placed.magento_entity_id)) == 1
    assert harness.status()["stores"][0]["actions"]["done"] == 1


def _let_holds_pass(harness: Harness) -> None:
    """As if the settle time had gone by: every held row is due now."""
    store = harness.store()
    try:
        store.db.execute(
            "UPDATE ledger SET next_attempt_at = NULL, "
            "payload = json_remove(payload, '$.settle_until')"
        )
    finally:
        store.close()


def test_retry_never_resends_a_write_that_may_still_complete(harness: Harness) -> None:
    """A partial refund that timed out while the server still worked on it is held
    until it settles; `retry --all` keeps that hold, so the next run sends nothing
    (the chaos soak found a second refund here)."""
    harness.sb.add_store("us-main")
    placed = _partial_buyer_cancel(harness)
    harness.sb.magento_faults.next_calls(
        r"POST order/\{id\}/refund", Fault("delay", seconds=2.0)
    )
    rc, _ = harness.run("run", "--once", timeout_seconds=1)
    assert rc == 1  # timed out: the outcome is unknown
    assert harness.run("retry", "--all")[0] == 0
    rc, _ = harness.run("run", "--once", timeout_seconds=1)
    time.sleep(1.5)  # the slow refund lands meanwhile

    assert rc == 0
    assert harness.refund_posts() == 1
    assert len(harness.memos(placed.magento_entity_id)) == 1
