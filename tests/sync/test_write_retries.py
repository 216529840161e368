"""Transient write failures heal within the run (issue 8, points 4 and 5), through the CLI.

A write the server refused with a "not done" status (HTTP 429/500/503, TikTok
36009002/36009003, 25001028) is reconciled, then sent again in the same run under the
transport's retry policy, each send counted in the ledger first. A timeout, a dropped
connection or a gateway 502/504 may still be applied later: never re-sent in the same run.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest

from cancelsync.sandbox.common import Fault
from cancelsync.sync.engine import SETTLE_MARGIN_SECONDS

from .conftest import BOTH_CONCURRENCIES, Harness

REFUND = r"POST order/\{id\}/refund"
CANCEL = r"POST /return_refund/\{v\}/cancellations"
HARNESS_TIMEOUT = 5  # timeout_seconds in the sandbox config


def _labels(journal_entries: list[object]) -> list[str]:
    return [e.endpoint for e in journal_entries]  # type: ignore[attr-defined]


def _read_between_posts(labels: list[str], post: str, read: str) -> bool:
    """Whether every re-send of ``post`` follows a ``read`` after the previous send."""
    posts = [i for i, label in enumerate(labels) if label == post]
    return len(posts) > 1 and all(read in labels[a + 1 : b] for a, b in pairwise(posts))


def _two_orders_cancelled_on_tiktok(harness: Harness) -> tuple[object, object]:
    one = harness.sb.place_order([{"sku": "A", "qty": 1, "price": 5.0}])
    two = harness.sb.place_order([{"sku": "B", "qty": 1, "price": 6.0}])
    harness.sb.tiktok.buyer_cancel(one.tiktok_order_id)
    harness.sb.tiktok.buyer_cancel(two.tiktok_order_id)
    return one, two


# ---------------------------------------------------------------------- direction B


@BOTH_CONCURRENCIES
@pytest.mark.parametrize(
    ("fault", "wait"),
    [
        (Fault("status", status=503), None),
        (Fault("status", status=500), None),
        (Fault("status", status=429, retry_after=3), 3.0),
    ],
    ids=["503", "500", "429"],
)
def test_refused_refund_is_reconciled_and_resent_in_the_same_run(
    harness: Harness, fault: Fault, wait: float | None
) -> None:
    """One refused refund is re-read, sent again after the policy's wait and done: exit 0,
    one memo, two sends counted in the ledger."""
    harness.sb.add_store("us-main")
    placed = harness.sb.place_order([{"sku": "A", "qty": 1, "price": 5.0}])
    harness.sb.tiktok.buyer_cancel(placed.tiktok_order_id)
    harness.sb.magento_faults.next_calls(REFUND, fault)

    rc, _ = harness.run("run", "--once")

    assert rc == 0
    assert len(harness.memos(placed.magento_entity_id)) == 1
    assert harness.refund_posts() == 2
    (entry,) = harness.ledger()
    assert (entry.state, entry.attempts) == ("done", 2)
    labels = _labels(harness.sb.magento_server.journal.entries())
    assert _read_between_posts(labels, "POST order/{id}/refund", "GET creditmemos")
    assert len(harness.sleeps) == 1
    if wait is not None:
        assert harness.sleeps == [wait]  # Retry-After honoured


@pytest.mark.parametrize("harness", [1], indirect=True, ids=["sequential"])
def test_refund_refused_past_the_policy_fails_for_later_without_blocking_others(
    harness: Harness,
) -> None:
    """A 503 that outlasts the retry policy leaves that refund failed for a later run
    (exit 1) while the other order is refunded; the next run heals it. (One action at
    a time: the five faults meet the first order's five sends.)"""
    harness.sb.add_store("us-main")
    one, two = _two_orders_cancelled_on_tiktok(harness)
    harness.sb.magento_faults.next_calls(REFUND, Fault("status", status=503), count=5)

    rc, _ = harness.run("run", "--once", retry_backoff_seconds=0)

    assert rc == 1  # this run hit a failure
    refunded = [len(harness.memos(p.magento_entity_id)) for p in (one, two)]
    assert sorted(refunded) == [0, 1]
    (failed,) = [e for e in harness.ledger() if e.state == "failed"]
    assert failed.attempts == 5  # every send counted, yet not given up
    assert failed.last_error
    assert len(harness.sleeps) == 4

    rc, _ = harness.run("run", "--once", retry_backoff_seconds=0)
    assert rc == 0
    assert [len(harness.memos(p.magento_entity_id)) for p in (one, two)] == [1, 1]


@pytest.mark.parametrize("harness", [4], indirect=True, ids=["4-in-flight"])
def test_refunds_refused_in_flight_are_each_counted_and_healed_once(
    harness: Harness,
) -> None:
    """Two refunds in flight at once, every send refused (503) past the policy: each row
    counts its own five sends, both are failed for later (exit 1), and the next run
    refunds each order exactly once."""
    harness.sb.add_store("us-main")
    one, two = _two_orders_cancelled_on_tiktok(harness)
    harness.sb.magento_faults.next_calls(REFUND, Fault("status", status=503), count=10)

    rc, _ = harness.run("run", "--once", retry_backoff_seconds=0)

    assert rc == 1
    assert harness.refund_posts() == 10
    assert sorted((e.state, e.attempts) for e in harness.ledger()) == [
        ("failed", 5),
        ("failed", 5),
    ]
    assert [harness.memos(p.magento_entity_id) for p in (one, two)] == [[], []]

    rc, _ = harness.run("run", "--once", retry_backoff_seconds=0)

    assert rc == 0
    assert [len(harness.memos(p.magento_entity_id)) for p in (one, two)] == [1, 1]
    assert harness.refund_posts() == 12


@BOTH_CONCURRENCIES
@pytest.mark.parametrize(
    "fault",
    [Fault("drop"), Fault("status", status=502), Fault("status", status=504)],
    ids=["dropped", "502", "504"],
)
def test_unknown_refund_outcome_is_not_resent_in_the_same_run(
    harness: Harness, fault: Fault
) -> None:
    """A dropped connection or a gateway error may still complete: one send this run,
    failed until at least timeout + margin, reconciled first next time."""
    harness.sb.add_store("us-main")
    placed = harness.sb.place_order([{"sku": "A", "qty": 1, "price": 5.0}])
    harness.sb.tiktok.buyer_cancel(placed.tiktok_order_id)
    harness.sb.magento_faults.next_calls(REFUND, fault)
    before = datetime.now(UTC).replace(microsecond=0)  # the ledger keeps whole seconds

    rc, _ = harness.run("run", "--once", retry_backoff_seconds=0)

    assert rc == 1
    assert harness.refund_posts() == 1
    assert harness.memos(placed.magento_entity_id) == []
    (entry,) = harness.ledger()
    assert entry.state == "failed"
    assert entry.next_attempt_at is not None
    settle = timedelta(seconds=HARNESS_TIMEOUT + SETTLE_MARGIN_SECONDS)
    assert datetime.fromisoformat(entry.next_attempt_at) >= before + settle
    assert harness.sleeps == []

    rc, _ = harness.run("run", "--once", retry_backoff_seconds=0)
    assert (rc, harness.refund_posts()) == (0, 1)  # not due yet: nothing sent

    # `retry` re-queues it but keeps the hold: the write could still be landing.
    assert harness.run("retry", "--all")[0] == 0
    assert harness.run("run", "--once", retry_backoff_seconds=0)[0] == 0
    assert harness.refund_posts() == 1
    # Once it has settled, the re-read finds no memo and the refund is sent again.
    store = harness.store()
    try:
        store.db.execute(
            "UPDATE ledger SET next_attempt_at = NULL, "
            "payload = json_remove(payload, '$.settle_until')"
        )
    finally:
        store.close()
    rc, _ = harness.run("run", "--once", retry_backoff_seconds=0)
    assert rc == 0
    assert len(harness.memos(placed.magento_entity_id)) == 1
    assert harness.refund_posts() == 2


# ---------------------------------------------------------------------- direction A


@BOTH_CONCURRENCIES
@pytest.mark.parametrize(
    ("code", "http_status"),
    [(36009003, 500), (36009002, 429), (25001028, 200)],
    ids=["internal-error", "throttled", "reverse-lock-failed"],
)
def test_refused_tiktok_cancel_is_reconciled_before_it_is_sent_again(
    harness: Harness, code: int, http_status: int
) -> None:
    """A cancel refused with a "not done" code is re-read (order detail) before the one
    re-send, and both sends are counted in the ledger: exit 0, one seller cancel."""
    harness.sb.add_store("us-main", refund_to_cancel=True)
    placed = harness.sb.place_order([{"sku": "A", "qty": 1, "price": 5.0}])
    harness.sb.magento.create_credit_memo(placed.magento_entity_id, None)
    harness.sb.tiktok.inject_error(
        CANCEL, code, "sandbox refusal", http_status=http_status
    )

    rc, _ = harness.run("run", "--once")

    assert rc == 0
    assert harness.sb.tiktok.order(placed.tiktok_order_id)["status"] == "CANCELLED"
    assert harness.cancel_posts() == 2
    (entry,) = harness.ledger()
    assert (entry.state, entry.attempts) == ("done", 2)
    labels = _labels(harness.sb.tiktok_server.journal.entries())
    assert _read_between_posts(
        labels, "POST /return_refund/{v}/cancellations", "GET /order/{v}/orders"
    )


@BOTH_CONCURRENCIES
def test_unreadable_cancel_reply_is_reconciled_not_resent(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TikTok cancels the order but its reply cannot be read: the re-read finds the
    cancel, nothing is sent again and the run is clean."""
    from cancelsync.clients.tiktok import mapper
    from cancelsync.errors import DataError

    def unreadable(data: object) -> tuple[str, str]:
        raise DataError("tiktok: data.cancel_id is missing")

    monkeypatch.setattr(mapper, "cancel_result_from_json", unreadable)
    harness.sb.add_store("us-main", refund_to_cancel=True)
    placed = harness.sb.place_order([{"sku": "A", "qty": 1, "price": 5.0}])
    harness.sb.magento.create_credit_memo(placed.magento_entity_id, None)

    rc, _ = harness.run("run", "--once")

    assert rc == 0
    assert harness.cancel_posts() == 1
    (entry,) = harness.ledger()
    assert (entry.state, entry.attempts) == ("done", 1)
