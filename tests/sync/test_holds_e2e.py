"""hold_on_request end to end: a pending buyer request holds the Magento order.

Through the CLI against both simulators: hold while pending, release on reject / withdraw,
release then refund on accept, never release the merchant's own hold, no hold on a shipped
order, exactly once across runs, a lost reply and a crash between the hold and its ledger
update, the dry run, and direction A's approval flow.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cancelsync.sandbox.common import Fault
from cancelsync.sandbox.harness import PlacedOrder as Placed
from cancelsync.store import LedgerEntry
from cancelsync.sync import engine as engine_module

from .conftest import BOTH_CONCURRENCIES, Harness

HOLD = r"POST orders/\{id\}/hold"
UNHOLD = r"POST orders/\{id\}/unhold"
pytestmark = BOTH_CONCURRENCIES


def _pending(harness: Harness, **store: Any) -> tuple[Placed, str]:
    """A store with hold_on_request on, one paid order, and the buyer's pending request."""
    harness.sb.add_store("us-main", hold_on_request=True, **store)
    placed = harness.sb.place_order(
        [{"sku": "TEE", "qty": 2, "price": 10.0}], shipping_fee=5.0
    )
    cancel_id = harness.sb.tiktok.buyer_cancel(placed.tiktok_order_id, pending=True)
    return placed, cancel_id


def _state(harness: Harness, placed: Placed) -> str:
    return str(harness.sb.magento.order(placed.magento_entity_id)["state"])


def _comments(harness: Harness, placed: Placed) -> str:
    order = harness.sb.magento.order(placed.magento_entity_id)
    return " ".join(h.get("comment") or "" for h in order.get("status_histories", []))


def _row(harness: Harness, prefix: str) -> LedgerEntry:
    rows = [e for e in harness.ledger() if e.idempotency_key.startswith(prefix)]
    assert len(rows) == 1, rows
    return rows[0]


def _posts(harness: Harness, endpoint: str) -> int:
    return harness.sb.magento_server.journal.count(endpoint)


def test_pending_request_holds_the_order_with_a_comment(harness: Harness) -> None:
    placed, cancel_id = _pending(harness)

    rc, _ = harness.run("run", "--once")

    assert rc == 0
    assert _state(harness, placed) == "holded"
    assert f"[cancelsync:hold:{cancel_id}]" in _comments(harness, placed)
    assert "do not ship" in _comments(harness, placed)
    hold = _row(harness, "hold:")
    assert (hold.state, hold.action, hold.remote_id) == ("done", "magento_hold", "held")
    assert harness.memos(placed.magento_entity_id) == []


def test_hold_is_sent_once_across_runs(harness: Harness) -> None:
    placed, _ = _pending(harness)

    harness.run("run", "--once")
    harness.run("run", "--once")
    harness.run("run", "--once", "--since", "1h")

    assert _posts(harness, HOLD) == 1
    assert _state(harness, placed) == "holded"


def test_hold_is_off_by_default(harness: Harness) -> None:
    harness.sb.add_store("us-main")
    placed = harness.sb.place_order([{"sku": "TEE", "qty": 1, "price": 10.0}])
    harness.sb.tiktok.buyer_cancel(placed.tiktok_order_id, pending=True)

    rc, _ = harness.run("run", "--once")

    assert rc == 0
    assert _posts(harness, HOLD) == 0
    assert _state(harness, placed) == "processing"


@pytest.mark.parametrize("answer", ["reject", "withdraw"])
def test_rejected_or_withdrawn_request_releases_the_hold(
    harness: Harness, answer: str
) -> None:
    placed, cancel_id = _pending(harness)
    harness.run("run", "--once")
    assert _state(harness, placed) == "holded"
    if answer == "reject":
        harness.sb.tiktok.seller_center_reject(cancel_id)
    else:
        harness.sb.tiktok.buyer_withdraw(cancel_id)

    rc, _ = harness.run("run", "--once")

    assert rc == 0
    assert _state(harness, placed) == "processing"
    assert f"[cancelsync:release:{cancel_id}]" in _comments(harness, placed)
    assert _row(harness, "release:").state == "done"
    assert harness.memos(placed.magento_entity_id) == []
    harness.run("run", "--once")
    assert _posts(harness, UNHOLD) == 1


def test_accepted_request_releases_then_refunds(harness: Harness) -> None:
    placed, cancel_id = _pending(harness)
    harness.run("run", "--once")
    harness.sb.tiktok.seller_center_approve(cancel_id)

    rc, _ = harness.run("run", "--once")

    assert rc == 0
    memos = harness.memos(placed.magento_entity_id)
    assert len(memos) == 1
    assert float(memos[0]["grand_total"]) == pytest.approx(25.0)
    assert _state(harness, placed) == "closed"
    assert _row(harness, "release:").state == "done"
    assert _row(harness, "refund:").state == "done"
    assert _posts(harness, UNHOLD) == 1


def test_merchants_own_hold_is_never_released(harness: Harness) -> None:
    placed, cancel_id = _pending(harness)
    harness.sb.magento.hold_order(placed.magento_entity_id)

    rc, _ = harness.run("run", "--once")
    assert rc == 0
    hold = _row(harness, "hold:")
    assert (hold.state, hold.reason_code) == ("skipped", "not_our_hold")
    assert "not by cancelsync" in (hold.reason or "")

    harness.sb.tiktok.seller_center_reject(cancel_id)
    rc, _ = harness.run("run", "--once")

    assert rc == 0
    assert _posts(harness, HOLD) == 0
    assert _posts(harness, UNHOLD) == 0
    assert _state(harness, placed) == "holded"


def test_merchants_hold_stays_on_an_accepted_request_and_needs_attention(
    harness: Harness,
) -> None:
    placed, cancel_id = _pending(harness)
    harness.sb.magento.hold_order(placed.magento_entity_id)
    harness.run("run", "--once")
    harness.sb.tiktok.seller_center_approve(cancel_id)

    rc, _ = harness.run("run", "--once")

    assert rc == 1
    assert _posts(harness, UNHOLD) == 0
    refund = _row(harness, "refund:")
    assert refund.state == "needs_attention"
    assert "on hold" in (refund.reason or "")


def test_shipped_order_is_not_held_and_needs_attention(harness: Harness) -> None:
    harness.sb.add_store("us-main", hold_on_request=True)
    placed = harness.sb.place_order([{"sku": "TEE", "qty": 1, "price": 10.0}])
    harness.sb.magento.ship_order(placed.magento_entity_id)
    harness.sb.tiktok.buyer_cancel(placed.tiktok_order_id, pending=True)

    rc, _ = harness.run("run", "--once")

    assert rc == 1
    assert _posts(harness, HOLD) == 0
    hold = _row(harness, "hold:")
    assert (hold.state, hold.reason_code) == ("needs_attention", "shipped")
    assert "which you have shipped" in (hold.reason or "")


def test_lost_reply_to_the_hold_is_found_on_reread_not_sent_again(
    harness: Harness,
) -> None:
    placed, cancel_id = _pending(harness)
    harness.sb.magento_faults.next_calls(HOLD, Fault("lost_response"))

    rc, _ = harness.run("run", "--once")

    assert rc == 0
    assert _posts(harness, HOLD) == 1
    assert _state(harness, placed) == "holded"
    assert _row(harness, "hold:").state == "done"
    harness.sb.tiktok.seller_center_reject(cancel_id)
    harness.run("run", "--once")
    assert _state(harness, placed) == "processing"


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs, nothing catches it."""


def _kill_after_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    """The process dies after Magento applied the hold, before the ledger said so."""
    real = engine_module.Engine._done

    def done(self: Any, event: Any, plan: Any, remote_id: str, **kw: Any) -> None:
        if plan.kind == "magento_hold":
            raise Killed
        real(self, event, plan, remote_id, **kw)

    monkeypatch.setattr(engine_module.Engine, "_done", done)


def _settle_time_passes(harness: Harness, prefix: str) -> None:
    """Move the row's in-flight hold into the past, as the settle time elapsing would."""
    key = _row(harness, prefix).idempotency_key
    store = harness.store()
    try:
        with store.unit_of_work():
            store.ledger.update(
                key,
                datetime.now(UTC),
                next_attempt_at=datetime.now(UTC) - timedelta(seconds=1),
            )
    finally:
        store.close()


def test_crash_between_hold_and_ledger_update_is_reconciled(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    placed, cancel_id = _pending(harness)
    with monkeypatch.context() as m:
        _kill_after_hold(m)
        with pytest.raises(Killed):
            harness.run("run", "--once")
    assert _state(harness, placed) == "holded"
    assert _row(harness, "hold:").state == "pending"

    harness.run("run", "--once")  # still inside the settle time: nothing sent
    _settle_time_passes(harness, "hold:")
    rc, _ = harness.run("run", "--once")

    assert rc == 0
    assert _posts(harness, HOLD) == 1
    hold = _row(harness, "hold:")
    assert hold.state == "done"  # found held with its marker: ours, so released later
    assert "already carries cancelsync's hold" in (hold.reason or "")
    harness.sb.tiktok.seller_center_reject(cancel_id)
    harness.run("run", "--once")
    assert _state(harness, placed) == "processing"


def test_request_accepted_while_the_hold_is_unconfirmed_waits_then_refunds(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Crash after the hold, then the request is accepted: nothing is refunded on a held
    order meanwhile; once the hold's settle time passed: re-read, release, refund."""
    placed, cancel_id = _pending(harness)
    with monkeypatch.context() as m:
        _kill_after_hold(m)
        with pytest.raises(Killed):
            harness.run("run", "--once")
    harness.sb.tiktok.seller_center_approve(cancel_id)

    harness.run("run", "--once")
    assert harness.memos(placed.magento_entity_id) == []
    assert _state(harness, placed) == "holded"

    _settle_time_passes(harness, "hold:")
    rc, _ = harness.run("run", "--once")

    assert rc == 0
    assert _row(harness, "hold:").state == "done"
    assert _row(harness, "release:").state == "done"
    assert len(harness.memos(placed.magento_entity_id)) == 1
    assert _state(harness, placed) == "closed"


def test_dry_run_plans_the_hold_and_sends_nothing(harness: Harness) -> None:
    placed, _ = _pending(harness)

    rc, out = harness.run("run", "--once", "--dry-run")

    assert rc == 0
    assert "on hold" in out
    assert _posts(harness, HOLD) == 0
    assert _state(harness, placed) == "processing"


def test_approval_by_credit_memo_after_unholding_releases_nothing_twice(
    harness: Harness,
) -> None:
    """Direction A's approval flow: the merchant unholds the order (Magento refuses a
    credit memo on a held one) and refunds it in full; cancelsync approves the buyer's
    request on TikTok, then finds its hold already gone, and refunds nothing again."""
    placed, _ = _pending(harness, refund_to_cancel=True)
    harness.run("run", "--once")
    assert _state(harness, placed) == "holded"
    harness.sb.magento.unhold_order(placed.magento_entity_id)
    harness.sb.magento.create_credit_memo(placed.magento_entity_id)

    rc, _ = harness.run("run", "--once")
    assert rc == 0
    assert harness.sb.tiktok.cancellations(placed.tiktok_order_id)[0][
        "cancel_status"
    ] in ("CANCELLATION_REQUEST_SUCCESS", "CANCELLATION_REQUEST_COMPLETE")
    rc, _ = harness.run("run", "--once")

    assert rc == 0
    assert len(harness.memos(placed.magento_entity_id)) == 1
    assert _posts(harness, UNHOLD) == 0
    release = _row(harness, "release:")
    assert release.state == "done"
    assert "no longer on hold" in (release.reason or "")


def _lose_database(harness: Harness) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{harness.folder / 'cancelsync.db'}{suffix}").unlink(missing_ok=True)


@pytest.mark.parametrize("answer", ["reject", "accept"])
def test_a_lost_database_still_releases_our_hold_from_its_marker(
    harness: Harness, answer: str
) -> None:
    """The order comment's marker tells a fresh database the hold is cancelsync's:
    released on reject; released then refunded once on accept."""
    placed, cancel_id = _pending(harness)
    harness.run("run", "--once")
    assert _state(harness, placed) == "holded"
    _lose_database(harness)
    if answer == "reject":
        harness.sb.tiktok.seller_center_reject(cancel_id)
    else:
        harness.sb.tiktok.seller_center_approve(cancel_id)

    rc, _ = harness.run("run", "--once")

    assert rc == 0
    assert _posts(harness, UNHOLD) == 1
    assert _row(harness, "hold:").reason_code == "held"
    assert _row(harness, "release:").state == "done"
    memos = harness.memos(placed.magento_entity_id)
    if answer == "reject":
        assert _state(harness, placed) == "processing"
        assert memos == []
    else:
        assert _state(harness, placed) == "closed"
        assert len(memos) == 1


def test_a_lost_database_never_releases_the_merchants_hold(harness: Harness) -> None:
    placed, cancel_id = _pending(harness)
    harness.sb.magento.hold_order(placed.magento_entity_id)
    harness.run("run", "--once")
    _lose_database(harness)
    harness.sb.tiktok.seller_center_reject(cancel_id)

    rc, _ = harness.run("run", "--once")

    assert rc == 0
    assert _posts(harness, UNHOLD) == 0
    assert _state(harness, placed) == "holded"


def test_a_hold_item_resolved_by_hand_is_never_taken_for_our_hold(
    harness: Harness,
) -> None:
    """`resolve` makes a refused hold's item done: still not cancelsync's hold, so the
    merchant's own hold placed later stays on when the request is rejected."""
    placed, cancel_id = _pending(harness)
    refused = b'{"message": "A hold action is not available."}'
    harness.sb.magento_faults.next_calls(
        HOLD, Fault("status", status=400, body=refused)
    )
    harness.run("run", "--once")
    hold = _row(harness, "hold:")
    assert hold.state == "needs_attention"
    rc, _ = harness.run(
        "resolve", str(hold.action_id), "--note", "answered in Seller Center"
    )
    assert rc == 0
    assert _row(harness, "hold:").state == "done"
    harness.sb.magento.hold_order(placed.magento_entity_id)  # the merchant's own
    harness.sb.tiktok.seller_center_reject(cancel_id)

    rc, _ = harness.run("run", "--once")

    assert rc == 0
    assert _posts(harness, UNHOLD) == 0
    assert _state(harness, placed) == "holded"


def test_a_read_failure_before_a_release_is_the_releases_to_retry(
    harness: Harness,
) -> None:
    """Magento's order read failing just before the release of a rejected request is
    recorded on the release (re-driven and closed by the retry pass), never as a
    failed refund of a request nobody accepted (such a row stayed open for good)."""
    placed, cancel_id = _pending(harness)
    harness.run("run", "--once")
    harness.sb.tiktok.seller_center_reject(cancel_id)
    harness.sb.magento_faults.next_calls(
        r"GET orders/\{id\}", Fault("status", status=503), count=5
    )

    rc, _ = harness.run("run", "--once", retry_backoff_seconds=0)

    assert rc == 1
    assert _state(harness, placed) == "holded"
    assert _row(harness, "release:").state == "failed"
    rc, _ = harness.run("run", "--once", retry_backoff_seconds=0)
    assert rc == 0
    assert _state(harness, placed) == "processing"
    assert [e.idempotency_key.split(":")[0] for e in harness.ledger()] == [
        "hold",
        "release",
    ]
    assert {e.state for e in harness.ledger()} == {"done"}


def test_dry_run_after_a_lost_database_plans_the_release_then_the_refund(
    harness: Harness,
) -> None:
    """The hold found by its marker is planned as released, so the refund is planned
    too (as the real run then does), not an attention item for a held order."""
    placed, cancel_id = _pending(harness)
    harness.run("run", "--once")
    _lose_database(harness)
    harness.sb.tiktok.seller_center_approve(cancel_id)

    rc, out = harness.run("run", "--once", "--dry-run")

    assert rc == 0, out
    assert "would need attention" not in out
    assert "refund" in out
    assert _posts(harness, UNHOLD) == 0
    assert harness.memos(placed.magento_entity_id) == []
    rc, _ = harness.run("run", "--once")
    assert rc == 0
    assert len(harness.memos(placed.magento_entity_id)) == 1


@pytest.mark.parametrize("lose_database", [False, True], ids=["kept", "lost-db"])
def test_a_second_request_takes_over_a_hold_whose_release_failed(
    harness: Harness, lose_database: bool
) -> None:
    """Request 1 held, then rejected, but its release failed; request 2 comes while the
    order is still under cancelsync's hold: that hold carries over to request 2 (and
    request 1's release is dropped), so the retry pass never unholds an order whose
    buyer still asks to cancel. Its own marker comment lets a lost database release it
    when request 2 is rejected."""
    placed, first = _pending(harness)
    harness.run("run", "--once")
    harness.sb.tiktok.seller_center_reject(first)
    harness.sb.magento_faults.next_calls(UNHOLD, Fault("status", status=503), count=20)
    assert harness.run("run", "--once")[0] == 1
    assert _row(harness, "release:").state == "failed"
    second = harness.sb.tiktok.buyer_cancel(placed.tiktok_order_id, pending=True)
    harness.run("run", "--once")  # the release still fails; request 2 arrives
    harness.sb.magento_faults.clear()

    assert harness.run("run", "--once", retry_backoff_seconds=0)[0] == 0
    assert harness.run("run", "--once", retry_backoff_seconds=0)[0] == 0

    assert _state(harness, placed) == "holded"
    holds = {
        e.tiktok_cancel_id: e for e in harness.ledger() if e.action == "magento_hold"
    }
    assert (holds[second].state, holds[second].remote_id) == ("done", "held")
    assert f"[cancelsync:hold:{second}]" in _comments(harness, placed)
    assert _posts(harness, HOLD) == 1  # carried over: no second hold POST
    release = _row(harness, "release:")
    assert (release.tiktok_cancel_id, release.state) == (first, "skipped")
    if lose_database:
        _lose_database(harness)
    harness.sb.tiktok.seller_center_reject(second)
    assert harness.run("run", "--once")[0] == 0
    assert _state(harness, placed) == "processing"


def test_a_failed_release_waits_for_its_backoff_like_any_write(
    harness: Harness,
) -> None:
    """A release Magento refused stays with the retry pass and its backoff: the next
    scan, which sees the rejected request again within the overlap, sends nothing."""
    placed, cancel_id = _pending(harness)
    harness.run("run", "--once")
    harness.sb.tiktok.seller_center_reject(cancel_id)
    harness.sb.magento_faults.next_calls(UNHOLD, Fault("status", status=503), count=50)
    assert harness.run("run", "--once")[0] == 1
    assert _row(harness, "release:").state == "failed"
    sent = _posts(harness, UNHOLD)

    harness.run("run", "--once")  # within the overlap and before the backoff

    assert _posts(harness, UNHOLD) == sent
    harness.sb.magento_faults.clear()
    _settle_time_passes(harness, "release:")  # the backoff is over: due now
    assert harness.run("run", "--once")[0] == 0
    assert _state(harness, placed) == "processing"


def test_a_failed_hold_is_closed_once_hold_on_request_is_turned_off(
    harness: Harness,
) -> None:
    """The merchant turns hold_on_request off while a hold has failed: its row is closed
    (skipped, nothing held) at its next retry, not re-driven every cycle for good."""
    placed, _ = _pending(harness)
    harness.sb.magento_faults.next_calls(HOLD, Fault("status", status=503), count=50)
    assert harness.run("run", "--once")[0] == 1
    assert _row(harness, "hold:").state == "failed"
    harness.sb.magento_faults.clear()
    harness.sb.stores[0] = replace(harness.sb.stores[0], hold_on_request=False)
    _settle_time_passes(harness, "hold:")

    rc, _ = harness.run("run", "--once")

    assert rc == 0
    hold = _row(harness, "hold:")
    assert hold.state == "skipped"
    assert "hold_on_request is off" in (hold.reason or "")
    assert _state(harness, placed) == "processing"
