"""The engine on its own: an in-memory store, a fake clock, stub writes and re-reads.

Each case drives ``Engine`` directly and asserts what it leaves behind: the ledger row
(state, attempts, next attempt time, reason), the report, the recorded retry waits and the
``action`` log events. No simulator, no HTTP: every branch of the exactly-once protocol and
of the ``SEND_ERRORS`` table is reached on purpose.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from cancelsync.clients.http import RetryPolicy
from cancelsync.clock import FakeClock
from cancelsync.config import (
    CancelToRefundConfig,
    RefundToCancelConfig,
    StoreConfig,
    WorkerConfig,
)
from cancelsync.directions import Direction
from cancelsync.errors import (
    AlreadyAppliedError,
    ApiError,
    AuthError,
    ConfigApiError,
    DataError,
    FatalApiError,
    NotCancellableError,
    NotFoundError,
    OutcomeUnknownError,
    RetryableApiError,
)
from cancelsync.rules.decisions import (
    Apply,
    Attention,
    Decision,
    Defer,
    Done,
    MagentoCancelPlan,
    Plan,
    RefundPlan,
    Skip,
    TikTokCancelPlan,
)
from cancelsync.store import LedgerEntry, Store
from cancelsync.store.db import iso
from cancelsync.sync.cycle import ShopContext, StoreRun, run_store_cycle
from cancelsync.sync.engine import (
    DEFAULT_WRITE_TIMEOUT_SECONDS,
    OUTAGE_STREAK,
    SEND_ERRORS,
    SETTLE_MARGIN_SECONDS,
    CycleReport,
    Engine,
    Event,
    StopRequested,
    Then,
    on_send_error,
    order_keys,
)

Logs = list[MutableMapping[str, Any]]

SCOPE = "shop:7495"
KEY = "refund:7495:c1"
BACKOFF = 60  # retry_backoff_seconds
REFUND = RefundPlan(
    magento_entity_id=42, items=((101, Decimal("1")),), shipping_amount=None,
    return_to_stock_items=(101,), comment="[cancelsync:c1]", expected_amount=Decimal("5"),
    whole_order=True, tiktok_cancel_id="c1",
)  # fmt: skip
CANCEL = TikTokCancelPlan("576", "seller_cancel_reason_out_of_stock")


def event(key: str = KEY, **ids: Any) -> Event:
    """A direction-B event for TikTok order 576 / Magento order 42."""
    return Event(
        key, Direction.TIKTOK_TO_MAGENTO, "magento_refund",
        {"tiktok_order_id": "576", "magento_entity_id": 42, **ids}, {"cancel_id": "c1"},
    )  # fmt: skip


@dataclass
class Remote:
    """A stub platform: each send takes the next scripted outcome (an exception is raised,
    a string is the remote id) and each re-read the next answer; the last one repeats."""

    sends: list[str | Exception] = field(default_factory=lambda: ["12"])
    reads: list[str | Exception | None] = field(default_factory=lambda: [None])
    sent: list[Plan] = field(default_factory=list)
    read: list[Plan] = field(default_factory=list)

    def execute(self, plan: Plan) -> str:
        self.sent.append(plan)
        outcome = self.sends.pop(0) if len(self.sends) > 1 else self.sends[0]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def reconcile(self, plan: Plan) -> str | None:
        self.read.append(plan)
        answer = self.reads.pop(0) if len(self.reads) > 1 else self.reads[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


@dataclass
class Rig:
    """An engine over an in-memory store, with its clock and recorded retry waits."""

    engine: Engine
    store: Store
    clock: FakeClock
    sleeps: list[float]
    stop: list[bool]
    max_in_flight: int = 1

    @property
    def report(self) -> CycleReport:
        return self.engine.report

    def row(self, key: str = KEY) -> LedgerEntry:
        entry = self.store.ledger.get(key)
        assert entry is not None, key
        return entry

    def apply(
        self, remote: Remote, decision: Decision | None = None, **kw: Any
    ) -> None:
        self.engine.apply(
            kw.pop("event", event()), decision or Apply(REFUND),
            remote.execute, remote.reconcile, **kw,
        )  # fmt: skip
        self.engine.drain()  # with max_in_flight > 1 the action runs in flight

    def later(self, seconds: float) -> str:
        return iso(self.clock.now() + timedelta(seconds=seconds))

    def new_run(self, **kw: Any) -> Rig:
        """The next cycle: a new engine and report on the same store and clock."""
        kw.setdefault("max_in_flight", self.max_in_flight)
        return make_rig(self.store, self.clock, run_id="run-2", **kw)


def make_rig(
    store: Store,
    clock: FakeClock,
    *,
    dry_run: bool = False,
    max_attempts: int = 5,
    attempts: int = 3,
    run_id: str = "run-1",
    max_in_flight: int = 1,
) -> Rig:
    sleeps: list[float] = []
    stop = [False]
    report = CycleReport("us-main", SCOPE, run_id, clock.now(), dry_run=dry_run)
    engine = Engine(
        store=store, cfg=StoreConfig("us-main", "app-key", "app-secret"),
        worker=WorkerConfig(Path("unused.db"), max_attempts=max_attempts,
                            retry_backoff_seconds=BACKOFF, max_in_flight=max_in_flight),
        scope=SCOPE, clock=clock, report=report, dry_run=dry_run,
        should_stop=lambda: stop[0],
        retry=RetryPolicy(attempts=attempts, jitter=0, sleep=sleeps.append),
    )  # fmt: skip
    return Rig(engine, store, clock, sleeps, stop, max_in_flight)


@pytest.fixture(autouse=True)
def _capture(logs: Logs) -> Logs:
    """Every engine here logs into ``capture_logs``, never into whatever an earlier test
    configured structlog with (a stream since closed)."""
    return logs


@pytest.fixture(params=[1, 4], ids=["sequential", "4-in-flight"])
def rig(
    store: Store, clock: FakeClock, logs: Logs, request: pytest.FixtureRequest
) -> Rig:
    """An engine for run-1, built while logs are captured (it binds its logger): one
    action at a time, and with four in flight (the remote calls in worker threads)."""
    return make_rig(store, clock, max_in_flight=request.param)


def actions(logs: Logs) -> list[tuple[str, str]]:
    """``(outcome, log_level)`` of each ``action`` log event, in order."""
    return [(e["outcome"], e["log_level"]) for e in logs if e["event"] == "action"]


def timeline(store: Store) -> list[str]:
    return [e.kind for e in store.timeline.for_order("576", 42, "576")]


def unknown(*, refused: bool, **kw: Any) -> OutcomeUnknownError:
    return OutcomeUnknownError(
        "write went wrong", platform="magento", refused=refused, **kw
    )


# ---------------------------------------------------------------------- the declared table


@pytest.mark.parametrize(
    ("error", "row_of"),
    [
        (NotFoundError("gone"), FatalApiError),
        (AlreadyAppliedError("done"), AlreadyAppliedError),
        (ConfigApiError("bad key"), ConfigApiError),
        (OutcomeUnknownError("?"), OutcomeUnknownError),
        (AuthError("denied"), AuthError),
        (ApiError("odd"), ApiError),
        (DataError("unreadable"), DataError),
    ],
)
def test_errors_take_their_nearest_row_of_the_table(
    error: ApiError | DataError, row_of: type[Exception]
) -> None:
    """The table is read along the MRO: an error without a row takes its base's."""
    assert on_send_error(error) is SEND_ERRORS[row_of]


def test_every_api_error_class_has_an_outcome() -> None:
    """Only credentials stop the store; every other row ends failed or needing attention."""
    raising = [cls for cls, row in SEND_ERRORS.items() if row.then is Then.RAISE]
    assert raising == [AuthError]
    assert {row.then for row in SEND_ERRORS.values()} == set(Then)


# ---------------------------------------------------------------------- a send that works


def test_first_send_is_done_with_the_row_committed_before_it(
    rig: Rig, logs: Logs
) -> None:
    """The row is pending with one attempt while the write runs, then done with the
    remote id; a refund's numeric remote id is the credit memo id."""
    seen: list[tuple[str, int]] = []

    def execute(plan: Plan) -> str:
        entry = rig.row()
        seen.append((entry.state, entry.attempts))
        return "12"

    rig.engine.apply(
        event(), Apply(REFUND, note="whole order"), execute, Remote().reconcile
    )
    rig.engine.drain()

    assert seen == [("pending", 1)]
    entry = rig.row()
    assert (entry.state, entry.attempts, entry.remote_id) == ("done", 1, "12")
    assert (entry.magento_creditmemo_id, entry.next_attempt_at) == (12, None)
    assert entry.reason == "whole order"
    assert entry.payload_dict()["plan"]["items"] == [["101", "1"]]
    assert rig.report.counts["applied"] == 1
    assert rig.report.ok
    assert rig.report.outcome == "ok"
    assert actions(logs) == [("done", "info")]
    (done,) = [e for e in logs if e["event"] == "action"]
    assert (done["store"], done["run_id"], done["remote_id"]) == (
        "us-main",
        "run-1",
        "12",
    )
    assert timeline(rig.store) == ["attempt", "done"]


def test_done_keeps_the_memo_id_an_event_came_with(rig: Rig) -> None:
    """A TikTok cancel's remote id is not a credit memo: the event's memo id is kept."""
    remote = Remote(sends=["4006"])
    rig.apply(remote, Apply(CANCEL), event=event(magento_creditmemo_id=7))
    entry = rig.row()
    assert (entry.state, entry.remote_id, entry.magento_creditmemo_id) == (
        "done",
        "4006",
        7,
    )


def test_a_final_row_is_never_sent_again(rig: Rig) -> None:
    """An event whose row is done is neither re-read nor sent."""
    rig.apply(Remote())
    remote = Remote()
    rig.apply(remote)
    assert (remote.sent, remote.read) == ([], [])
    assert rig.row().attempts == 1


# ---------------------------------------------------------------------- re-read before re-send


def test_an_existing_row_is_re_read_and_found_done_without_sending(
    rig: Rig, logs: Logs
) -> None:
    """A row left failed by an earlier run is re-read first; found, it is done unsent."""
    rig.apply(Remote(sends=[RetryableApiError("busy")]))
    remote = Remote(reads=["12"])
    rig.apply(remote)
    assert (len(remote.sent), len(remote.read)) == (0, 1)
    entry = rig.row()
    assert (entry.state, entry.remote_id, entry.attempts) == ("done", "12", 1)
    assert rig.report.counts["reconciled"] == 1
    assert [e["found"] for e in logs if e["event"] == "action.reconciled"] == [True]


def test_an_existing_row_is_re_read_and_sent_when_missing(rig: Rig) -> None:
    """Re-read finds nothing: the write is sent, its attempt counted on the same row."""
    rig.apply(Remote(sends=[RetryableApiError("busy")]))
    remote = Remote()
    rig.apply(remote)
    assert (len(remote.sent), len(remote.read)) == (1, 1)
    assert (rig.row().state, rig.row().attempts) == ("done", 2)


@pytest.mark.parametrize(
    ("read_error", "state"),
    [(RetryableApiError("read 503"), "failed"), (FatalApiError("read 400"), "needs_attention")],
)  # fmt: skip
def test_a_failing_re_read_before_a_re_send_sends_nothing(
    rig: Rig, read_error: ApiError, state: str
) -> None:
    """ "Could not look" never means "not there": nothing is sent, the row records why."""
    rig.apply(Remote(sends=[RetryableApiError("busy")]))
    remote = Remote(reads=[read_error])
    rig.apply(remote)
    entry = rig.row()
    assert remote.sent == []
    assert entry.state == state
    assert "re-read before sending failed" in (
        (entry.last_error or "") + (entry.reason or "")
    )


def test_auth_error_while_re_reading_propagates(rig: Rig) -> None:
    """Credentials failing on the re-read stop the store; the row stays as it was."""
    rig.apply(Remote(sends=[RetryableApiError("busy")]))
    with pytest.raises(AuthError):
        rig.apply(Remote(reads=[AuthError("expired")]))
    assert rig.row().state == "failed"


# ---------------------------------------------------------------------- OutcomeUnknownError


@pytest.mark.parametrize(("retry_after", "wait"), [(None, 1.0), (3, 3.0)])
def test_refused_write_is_re_read_and_sent_again_in_the_same_run(
    rig: Rig, logs: Logs, retry_after: float | None, wait: float
) -> None:
    """A refused write heals within the run: one wait (Retry-After honoured), one re-read,
    a second send counted before it is made."""
    remote = Remote(sends=[unknown(refused=True, retry_after=retry_after), "12"])
    rig.apply(remote)
    entry = rig.row()
    assert (entry.state, entry.attempts, len(remote.sent), len(remote.read)) == (
        "done", 2, 2, 1,
    )  # fmt: skip
    assert rig.sleeps == [wait]
    assert actions(logs) == [("resend", "warning"), ("done", "info")]
    assert rig.report.failures == 0


def test_refused_write_found_on_the_re_read_is_not_sent_again(rig: Rig) -> None:
    """The re-read after a refusal shows the effect: done, reconciled, no second send."""
    remote = Remote(sends=[unknown(refused=True)], reads=["12"])
    rig.apply(remote)
    assert (rig.row().state, len(remote.sent)) == ("done", 1)
    assert rig.report.counts["reconciled"] == 1


def test_refused_past_the_policy_fails_for_a_later_run(rig: Rig, logs: Logs) -> None:
    """Refused on every one of the policy's sends: failed after the backoff, not before
    the retry policy's waits ran out."""
    remote = Remote(sends=[unknown(refused=True)])
    rig.apply(remote)
    entry = rig.row()
    assert (entry.state, entry.attempts) == ("failed", 3)
    assert entry.next_attempt_at == rig.later(BACKOFF)
    assert entry.payload_dict()["failed_rounds"] == 1
    assert (len(remote.sent), len(remote.read), rig.sleeps) == (3, 3, [1.0, 2.0])
    assert rig.report.failures == 1
    assert rig.report.outcome == "failures"
    assert actions(logs)[-1] == ("failed", "warning")
    (failed,) = [e for e in logs if e.get("outcome") == "failed"]
    assert failed["next_attempt_at"] == rig.later(BACKOFF)
    assert timeline(rig.store)[-1] == "failed"


def test_refused_write_is_not_resent_once_a_stop_is_requested(rig: Rig) -> None:
    """A stop request ends the in-run retries: re-read once, failed for later."""
    rig.stop[0] = True
    remote = Remote(sends=[unknown(refused=True)])
    rig.apply(remote)
    assert (rig.row().state, len(remote.sent), rig.sleeps) == ("failed", 1, [])
    with pytest.raises(StopRequested):
        rig.engine.check_stop()


def test_maybe_applied_write_waits_out_the_settle_time(rig: Rig) -> None:
    """A timeout is never re-sent in the run: one re-read, then failed no sooner than the
    client timeout plus the settle margin."""
    remote = Remote(sends=[unknown(refused=False, settle_seconds=30)])
    rig.apply(remote)
    entry = rig.row()
    assert (entry.state, len(remote.sent), len(remote.read)) == ("failed", 1, 1)
    assert entry.next_attempt_at == rig.later(30 + SETTLE_MARGIN_SECONDS)
    assert rig.sleeps == []


def test_maybe_applied_write_with_a_short_settle_keeps_the_backoff(rig: Rig) -> None:
    """The settle time only ever lengthens the wait: the backoff is the floor."""
    rig.apply(Remote(sends=[unknown(refused=False, settle_seconds=-50)]))
    assert rig.row().next_attempt_at == rig.later(BACKOFF)


def test_maybe_applied_write_found_on_re_read_is_done(rig: Rig) -> None:
    """The timed-out write did land: the re-read records it done, reconciled."""
    rig.apply(Remote(sends=[unknown(refused=False)], reads=["12"]))
    assert (rig.row().state, rig.row().remote_id) == ("done", "12")


def test_maybe_applied_write_whose_re_read_fails_still_waits_to_settle(
    rig: Rig,
) -> None:
    """Neither sent again nor trusted: failed, with both errors, after the settle time."""
    remote = Remote(
        sends=[unknown(refused=False, settle_seconds=120)],
        reads=[RetryableApiError("read 503")],
    )
    rig.apply(remote)
    entry = rig.row()
    assert entry.state == "failed"
    assert "then the re-read failed: read 503" in (entry.last_error or "")
    assert entry.next_attempt_at == rig.later(120 + SETTLE_MARGIN_SECONDS)


def test_refused_write_whose_resend_re_read_fails_stops_sending(rig: Rig) -> None:
    """The re-read before a re-send fails: nothing more is sent, the row is failed."""
    remote = Remote(
        sends=[unknown(refused=True)], reads=[RetryableApiError("read 503")]
    )
    rig.apply(remote)
    assert (rig.row().state, len(remote.sent)) == ("failed", 1)
    assert "re-read before sending failed" in (rig.row().last_error or "")


# ---------------------------------------------------------------------- the other errors


def test_already_applied_found_on_re_read_is_done(rig: Rig) -> None:
    """The platform says "already done" and the re-read agrees: done."""
    rig.apply(Remote(sends=[AlreadyAppliedError("nothing to refund")], reads=["12"]))
    assert rig.row().state == "done"


def test_already_applied_not_found_needs_attention(rig: Rig) -> None:
    """ "Already done" that the re-read cannot see is a person's question."""
    rig.apply(Remote(sends=[AlreadyAppliedError("nothing to refund")]))
    entry = rig.row()
    assert entry.state == "needs_attention"
    assert entry.reason == (
        "nothing to refund (the platform says it is already done, but cancelsync "
        "cannot see the effect)"
    )
    assert entry.reported_run == "run-1"
    assert rig.report.new_attention == 1
    assert rig.report.outcome == "attention"


def test_auth_error_while_sending_propagates_and_leaves_the_row_pending(
    rig: Rig,
) -> None:
    """Credentials are store-wide: the row stays pending (re-read next time)."""
    with pytest.raises(AuthError):
        rig.apply(Remote(sends=[AuthError("token expired")]))
    assert (rig.row().state, rig.row().attempts) == ("pending", 1)


def test_auth_error_on_the_re_read_after_a_failed_send_propagates(rig: Rig) -> None:
    """An AuthError during the look-first after a refusal stops the store too."""
    with pytest.raises(AuthError):
        rig.apply(
            Remote(sends=[FatalApiError("refused")], reads=[AuthError("expired")])
        )
    assert rig.row().state == "pending"


def test_not_cancellable_needs_attention_without_a_re_read(rig: Rig) -> None:
    """TikTok will not cancel a shipped order: attention, pointing at Seller Center."""
    remote = Remote(sends=[NotCancellableError("order shipped", platform="tiktok")])
    rig.apply(remote, Apply(CANCEL))
    entry = rig.row()
    assert remote.read == []
    assert entry.state == "needs_attention"
    assert entry.reason == (
        "TikTok will not cancel: order shipped; handle it as a return/refund in "
        "Seller Center"
    )


def test_config_refusal_without_a_replanner_needs_attention(rig: Rig) -> None:
    """A configuration refusal is reported as it is when nobody can re-plan."""
    rig.apply(
        Remote(sends=[ConfigApiError("bad reason", code=25001014)]), Apply(CANCEL)
    )
    entry = rig.row()
    assert entry.state == "needs_attention"
    assert entry.reason == "configuration problem: bad reason (code 25001014)"


def test_config_refusal_is_re_planned_once_and_the_new_plan_sent(
    rig: Rig, logs: Logs
) -> None:
    """The re-plan is sent after a re-read of the first plan; its sends count anew."""
    other = TikTokCancelPlan("576", "seller_cancel_reason_other")
    asked: list[ConfigApiError] = []

    def replan(plan: Plan, exc: ConfigApiError) -> Apply | Attention | None:
        asked.append(exc)
        return Apply(other, note="reason re-planned")

    remote = Remote(sends=[ConfigApiError("bad reason"), "4006"])
    rig.apply(remote, Apply(CANCEL), replan=replan)
    entry = rig.row()
    assert (entry.state, entry.attempts, entry.remote_id) == ("done", 2, "4006")
    assert remote.sent == [CANCEL, other]
    assert remote.read == [CANCEL]
    assert len(asked) == 1
    assert actions(logs) == [("replanned", "info"), ("done", "info")]
    assert "replanned" in timeline(rig.store)


def test_a_second_config_refusal_is_not_re_planned_again(rig: Rig) -> None:
    """One re-plan per event and run: the new plan's refusal needs attention."""
    calls: list[Plan] = []

    def replan(plan: Plan, exc: ConfigApiError) -> Apply | Attention | None:
        calls.append(plan)
        return Apply(TikTokCancelPlan("576", "other"))

    rig.apply(
        Remote(sends=[ConfigApiError("bad reason")]), Apply(CANCEL), replan=replan
    )
    assert len(calls) == 1
    assert rig.row().state == "needs_attention"


def test_re_planned_write_found_on_the_re_read_is_not_sent(rig: Rig) -> None:
    """The first plan's effect shows up on the re-read: done, the new plan unsent."""
    remote = Remote(sends=[ConfigApiError("bad reason")], reads=["4006"])
    rig.apply(
        remote, Apply(CANCEL), replan=lambda plan, exc: Apply(MagentoCancelPlan(42, ""))
    )
    assert (rig.row().state, remote.sent) == ("done", [CANCEL])


def test_replanner_may_answer_with_an_attention_item(rig: Rig) -> None:
    """A re-planner's Attention is recorded as it says, code included."""
    said = Attention("TikTok offers: out_of_stock only")
    rig.apply(
        Remote(sends=[ConfigApiError("bad reason")]), Apply(CANCEL),
        replan=lambda plan, exc: said,
    )  # fmt: skip
    entry = rig.row()
    assert (entry.state, entry.reason) == ("needs_attention", said.reason)
    assert entry.reason_code == getattr(said, "code", None)


@pytest.mark.parametrize(
    "error", [FatalApiError("qty too high", status=400), NotFoundError("no such order")]
)
def test_fatal_refusal_is_re_read_then_needs_attention(
    rig: Rig, error: FatalApiError
) -> None:
    """A refusal may mean "already there": looked up first, else attention."""
    remote = Remote(sends=[error])
    rig.apply(remote)
    assert (len(remote.read), rig.row().state, rig.row().reason) == (
        1, "needs_attention", str(error),
    )  # fmt: skip


def test_fatal_refusal_whose_effect_is_there_is_done(rig: Rig) -> None:
    """Magento's item-quantity refusal on a repeated refund: the memo is there, done."""
    rig.apply(Remote(sends=[FatalApiError("qty too high")], reads=["12"]))
    assert rig.row().state == "done"


def test_retryable_error_inside_execute_fails_without_a_re_read(rig: Rig) -> None:
    """A read inside execute failing sent nothing: failed after the backoff, no look."""
    remote = Remote(sends=[RetryableApiError("HTTP 503")])
    rig.apply(remote)
    entry = rig.row()
    assert (entry.state, entry.last_error, remote.read) == ("failed", "HTTP 503", [])
    assert entry.next_attempt_at == rig.later(BACKOFF)


def test_generic_api_error_fails_for_a_later_run(rig: Rig) -> None:
    """An ApiError with no row of its own takes the ApiError row: failed."""
    rig.apply(Remote(sends=[ApiError("odd answer", status=418)]))
    assert (rig.row().state, rig.row().last_error) == (
        "failed",
        "odd answer (HTTP 418)",
    )


def test_unreadable_reply_is_re_read_then_failed(rig: Rig) -> None:
    """An unreadable answer may hide a success: re-read, then failed for later."""
    remote = Remote(sends=[DataError("no entity_id")])
    rig.apply(remote)
    assert (len(remote.read), rig.row().state) == (1, "failed")
    assert rig.row().last_error == "unreadable reply: no entity_id"


def test_unreadable_reply_whose_effect_is_there_is_done(rig: Rig) -> None:
    """The re-read after an unreadable reply finds the memo: done."""
    rig.apply(Remote(sends=[DataError("no entity_id")], reads=["12"]))
    assert (rig.row().state, rig.row().remote_id) == ("done", "12")


def test_a_bug_in_execute_propagates_with_the_row_pending(rig: Rig) -> None:
    """Exceptions outside the error tree are bugs: not swallowed, the row stays pending."""
    with pytest.raises(ZeroDivisionError):
        rig.apply(Remote(sends=[ZeroDivisionError("bug")]))
    assert rig.row().state == "pending"


# ---------------------------------------------------------------------- failed runs


def test_failed_runs_back_off_and_give_up_after_max_attempts(
    store: Store, clock: FakeClock, logs: Logs
) -> None:
    """Each failed run doubles the backoff; the max_attempts-th needs attention."""
    first = make_rig(store, clock, max_attempts=3)
    first.apply(Remote(sends=[RetryableApiError("busy")]))
    assert first.row().next_attempt_at == first.later(BACKOFF)
    second = first.new_run(max_attempts=3)
    second.apply(Remote(sends=[RetryableApiError("busy")]))
    entry = second.row()
    assert (entry.state, entry.attempts) == ("failed", 2)
    assert entry.next_attempt_at == second.later(2 * BACKOFF)
    assert entry.payload_dict()["failed_rounds"] == 2
    third = first.new_run(max_attempts=3)
    third.apply(Remote(sends=[RetryableApiError("busy")]))
    entry = third.row()
    assert entry.state == "needs_attention"
    assert entry.reason == "gave up after 3 failed run(s) (3 send(s)): busy"
    assert entry.next_attempt_at is None
    assert third.report.new_attention == 1


def test_a_requeued_row_starts_its_failed_runs_over(rig: Rig) -> None:
    """``retry`` re-queues a row with no attempts: its failed-run count starts again."""
    rig.apply(Remote(sends=[RetryableApiError("busy")]))
    rig.store.ledger.requeue(rig.clock.now())
    rig.apply(Remote(sends=[RetryableApiError("busy")]))
    entry = rig.row()
    assert (entry.state, entry.payload_dict()["failed_rounds"]) == ("failed", 1)


# ---------------------------------------------------------------------- record


@pytest.mark.parametrize(
    ("decision", "state"),
    [
        (Done("memo already there"), "done"),
        (Skip("not imported"), "skipped"),
        (Attention("order shipped"), "needs_attention"),
    ],
)
def test_record_stores_the_decision_with_its_code(
    rig: Rig, logs: Logs, decision: Decision, state: str
) -> None:
    """A decision without a write is one row with its reason and reason_code, one action
    log line and one timeline entry."""
    rig.engine.record(event(), decision)
    entry = rig.row()
    code = getattr(decision, "code", None)
    assert (entry.state, entry.reason, entry.action) == (
        state, decision.reason, "magento_refund",  # type: ignore[union-attr]
    )  # fmt: skip
    assert entry.reason_code == (None if code is None else str(code))
    assert entry.payload_dict() == {"cancel_id": "c1"}
    assert actions(logs) == [(decision.outcome, "info")]
    assert timeline(rig.store) == [decision.outcome]
    assert rig.report.counts[decision.outcome] == 1
    assert rig.report.new_attention == (1 if state == "needs_attention" else 0)


def test_record_stores_a_code_for_counting(rig: Rig) -> None:
    """reason_code is whatever ``code`` the decision carries; counted per state."""

    @dataclass(frozen=True)
    class CodedSkip:
        reason: str
        code: str = "not_imported"
        outcome = "skipped"

    rig.engine.record(event(), CodedSkip("no Magento order"))  # type: ignore[arg-type]
    rig.engine.record(event("refund:7495:c2"), CodedSkip("no Magento order"))  # type: ignore[arg-type]
    rig.engine.record(event("refund:7495:c3"), CodedSkip("echo", code="echo"))  # type: ignore[arg-type]
    assert rig.row().reason_code == "not_imported"
    assert rig.store.ledger.reason_code_counts(SCOPE, "skipped") == {
        "echo": 1, "not_imported": 2,
    }  # fmt: skip


def test_record_over_an_existing_row_updates_it(rig: Rig) -> None:
    """A failed row later decided done takes the new state and reason, no next attempt."""
    rig.apply(Remote(sends=[RetryableApiError("busy")]))
    rig.engine.record(event(), Done("refunded by hand"))
    entry = rig.row()
    assert (entry.state, entry.reason, entry.next_attempt_at) == (
        "done", "refunded by hand", None,
    )  # fmt: skip


def test_record_defer_stores_nothing(rig: Rig, logs: Logs) -> None:
    """A deferred event is looked at again next cycle: logged and counted, not stored."""
    rig.engine.record(event(), Defer("order still syncing"))
    assert rig.store.ledger.get(KEY) is None
    assert rig.report.counts["defer"] == 1
    assert actions(logs) == [("defer", "info")]


def test_apply_of_a_non_apply_decision_records_it(rig: Rig) -> None:
    """apply() with a Skip records it like record() and sends nothing."""
    remote = Remote()
    rig.apply(remote, Skip("not ours"))
    assert (rig.row().state, remote.sent) == ("skipped", [])


def test_an_attention_item_counts_once_across_runs(
    store: Store, clock: FakeClock
) -> None:
    """Only the run that first reports an attention item counts it (and exits 1)."""
    first = make_rig(store, clock)
    first.engine.record(event(), Attention("order shipped"))
    assert (first.report.new_attention, first.row().reported_run) == (1, "run-1")
    second = first.new_run()
    second.engine.record(event(), Attention("still shipped"))
    assert (second.report.new_attention, second.report.counts["needs_attention"]) == (
        0,
        1,
    )
    assert (second.row().reason, second.row().reported_run) == (
        "still shipped",
        "run-1",
    )


# ---------------------------------------------------------------------- dry run


def test_dry_run_plans_without_writing(
    store: Store, clock: FakeClock, logs: Logs
) -> None:
    """A dry run lists what it would do and stores nothing, not even a cursor."""
    rig = make_rig(store, clock, dry_run=True)
    remote = Remote()
    rig.apply(remote)
    rig.engine.record(event("k-skip"), Skip("not ours"))
    rig.engine.record(event("k-att"), Attention("order shipped"))
    rig.engine.advance_cursor(Direction.TIKTOK_TO_MAGENTO, 100)
    rig.engine.note_direction(Direction.TIKTOK_TO_MAGENTO, enabled=False)
    assert (remote.sent, remote.read) == ([], [])
    assert store.db.execute("SELECT COUNT(*) FROM ledger").fetchone()[0] == 0
    assert store.cursors.all(SCOPE) == []
    assert store.switches.history(SCOPE) == []
    assert [p["decision"] for p in rig.report.planned] == [
        "apply",
        "skipped",
        "needs_attention",
    ]
    assert rig.report.planned[0]["plan"]["kind"] == "magento_refund"
    assert rig.report.counts["would_apply"] == 1
    assert rig.report.new_attention == 1
    assert all(e["dry_run"] for e in logs if e["event"] == "action")


def test_dry_run_errors_are_counted_not_stored(store: Store, clock: FakeClock) -> None:
    """A read failing in a dry run counts as a failure or an attention item, unstored."""
    rig = make_rig(store, clock, dry_run=True)
    with rig.engine.event_scope(event("k-1")):
        raise RetryableApiError("HTTP 503")
    with rig.engine.event_scope(event("k-2")):
        raise FatalApiError("HTTP 400")
    assert store.db.execute("SELECT COUNT(*) FROM ledger").fetchone()[0] == 0
    assert (rig.report.failures, rig.report.new_attention) == (1, 1)
    assert store.timeline.for_order("576", 42, "576") == []


# ---------------------------------------------------------------------- one event's errors


def test_event_scope_turns_a_retryable_read_error_into_a_failed_row(rig: Rig) -> None:
    """A read failing while handling one event is that event's failure, for later."""
    with rig.engine.event_scope(event()) as scope:
        scope.event = event(magento_increment_id="000000042")
        raise RetryableApiError("HTTP 503")
    entry = rig.row()
    assert (entry.state, entry.action, entry.magento_increment_id) == (
        "failed", "magento_refund", "000000042",
    )  # fmt: skip
    assert entry.last_error == "handling it failed: HTTP 503"
    assert entry.next_attempt_at == rig.later(BACKOFF)


@pytest.mark.parametrize(
    ("error", "kind"),
    [(FatalApiError("HTTP 400", code=12052900), "an error"), (DataError("no sku"), "an unreadable data")],
)  # fmt: skip
def test_event_scope_turns_other_errors_into_attention(
    rig: Rig, error: Exception, kind: str
) -> None:
    """A non-retryable error while handling one event needs attention, with the code."""
    with rig.engine.event_scope(event()):
        raise error
    entry = rig.row()
    assert entry.state == "needs_attention"
    assert entry.reason == (
        f"handling it failed with {kind}: {error} (fix the cause, then `cancelsync retry`)"
    )


def test_event_scope_lets_auth_errors_and_bugs_through(rig: Rig) -> None:
    """AuthError stops the store and a bug stays a bug: neither is the event's failure."""
    with pytest.raises(AuthError), rig.engine.event_scope(event()):
        raise AuthError("expired")
    with pytest.raises(KeyError), rig.engine.event_scope(event()):
        raise KeyError("bug")
    assert rig.store.ledger.get(KEY) is None


def test_an_error_after_the_event_was_decided_keeps_the_decision(
    rig: Rig, logs: Logs
) -> None:
    """A later read failing on an event already done leaves it done and counts a failure."""
    with rig.engine.event_scope(event()):
        rig.apply(Remote())
        raise FatalApiError("later read failed")
    assert rig.row().state == "done"
    assert rig.report.failures == 1
    assert [e["event"] for e in logs if e["log_level"] == "error"] == [
        "action.error_after_final"
    ]


def test_the_outage_breaker_stops_the_cycle_after_a_streak(rig: Rig) -> None:
    """OUTAGE_STREAK retryable failures in a row mean the platform is down: the last
    one propagates; a handled event or another error in between resets the streak."""
    for n in range(OUTAGE_STREAK - 1):
        with rig.engine.event_scope(event(f"k-{n}")):
            raise RetryableApiError("HTTP 503")
    with rig.engine.event_scope(event("k-ok")):
        pass
    for n in range(OUTAGE_STREAK - 1):
        with rig.engine.event_scope(event(f"k-again-{n}")):
            raise RetryableApiError("HTTP 503")
    with rig.engine.event_scope(event("k-fatal")):
        raise FatalApiError("HTTP 400")
    for n in range(OUTAGE_STREAK - 1):
        with rig.engine.event_scope(event(f"k-more-{n}")):
            raise RetryableApiError("HTTP 503")
    with pytest.raises(RetryableApiError), rig.engine.event_scope(event("k-down")):
        raise RetryableApiError("HTTP 503")
    assert rig.store.ledger.get("k-down") is None
    assert rig.store.ledger.counts(SCOPE)["failed"] == 3 * (OUTAGE_STREAK - 1)


# ---------------------------------------------------------------------- cursors and switches


def test_cursor_is_fresh_for_a_new_store_then_moves_only_forward(rig: Rig) -> None:
    """No cursor: fresh. advance_cursor stores the direction's stream and never goes back."""
    direction = Direction.MAGENTO_TO_TIKTOK
    assert rig.engine.cursor(direction) == (None, True)
    rig.engine.advance_cursor(direction, 100)
    rig.engine.advance_cursor(direction, 90)  # an overlap re-read
    rig.engine.advance_cursor(direction, 100)
    assert rig.engine.cursor(direction) == (100, False)
    cursor = rig.store.cursors.get(SCOPE, direction.stream)
    assert cursor is not None
    assert cursor.position == 100


def test_a_direction_switched_back_on_starts_fresh(rig: Rig) -> None:
    """Off in a cycle after its last fresh run: fresh again, keeping the old position,
    until a fresh run is noted; the switches are their own table, not cursors."""
    direction = Direction.TIKTOK_TO_MAGENTO
    rig.engine.advance_cursor(direction, 500)
    rig.engine.note_direction(direction, enabled=True)
    assert rig.engine.cursor(direction) == (500, False)
    rig.engine.note_direction(direction, enabled=False)
    rig.clock.advance(60)
    rig.engine.note_direction(direction, enabled=False)
    assert rig.engine.cursor(direction) == (500, True)
    rig.engine.note_direction(direction, enabled=True)
    assert rig.engine.cursor(direction) == (500, False)
    assert [c.stream for c in rig.store.cursors.all(SCOPE)] == [direction.stream]
    assert [s.enabled for s in rig.store.switches.history(SCOPE)] == [True, False, True]


# ---------------------------------------------------------------------- one store's cycle


def _cycle(store: Store, clock: FakeClock, **kw: Any) -> CycleReport:
    """One cycle of a store with both directions off (the clients are never called)."""
    cfg = StoreConfig(
        "us-main", "app-key", "app-secret",
        magento_refund_to_tiktok_cancel=RefundToCancelConfig(enabled=False),
        tiktok_cancel_to_magento_refund=CancelToRefundConfig(enabled=False),
    )  # fmt: skip
    since = kw.pop("since", None)
    run = StoreRun(
        store=store, cfg=cfg, worker=WorkerConfig(Path("unused.db")),
        shop=ShopContext("7495", "US", SCOPE), magento=object(), tiktok=object(),  # type: ignore[arg-type]
        clock=clock, run_id="run-1", retry=RetryPolicy(sleep=lambda s: None), **kw,
    )  # fmt: skip
    return run_store_cycle(run, since=since)


def test_cycle_notes_directions_off_and_logs_one_summary(
    store: Store, clock: FakeClock, logs: Logs
) -> None:
    """A cycle with both directions off notes them off, records itself and logs one
    ``cycle.finished`` line with its outcome and counts."""
    report = _cycle(store, clock)
    assert report.outcome == "ok"
    switches = store.switches.history(SCOPE)
    assert {(s.direction, s.enabled) for s in switches} == {
        ("tiktok_to_magento", False), ("magento_to_tiktok", False),
    }  # fmt: skip
    last = store.cycles.last(SCOPE)
    assert last is not None
    assert (last.run_id, last.outcome) == ("run-1", "ok")
    (finished,) = [e for e in logs if e["event"] == "cycle.finished"]
    assert (finished["outcome"], finished["failures"], finished["dry_run"]) == (
        "ok",
        0,
        False,
    )


def test_cycle_stops_before_a_due_retry_when_asked(
    store: Store, clock: FakeClock, logs: Logs
) -> None:
    """A stop request before the first due row ends the cycle early, the row untouched."""
    store.ledger.begin(KEY, scope=SCOPE, store_name="us-main",
                       direction=Direction.TIKTOK_TO_MAGENTO, action="magento_refund",
                       now=clock.now(), state="failed")  # fmt: skip
    report = _cycle(store, clock, should_stop=lambda: True)
    assert report.counts["stopped_early"] == 1
    assert store.ledger.get(KEY).state == "failed"  # type: ignore[union-attr]
    (finished,) = [e for e in logs if e["event"] == "cycle.finished"]
    assert finished["n_stopped_early"] == 1


def test_report_outcome_names_the_worst_thing_that_happened(clock: FakeClock) -> None:
    """A store error outranks failures, which outrank new attention items."""
    report = CycleReport("us-main", SCOPE, "run-1", clock.now())
    report.new_attention = 1
    assert (report.outcome, report.ok) == ("attention", False)
    report.failures = 1
    assert report.outcome == "failures"
    report.error = "magento down"
    assert report.outcome == "error"


def test_lookups_and_stop_checks_leave_state_alone(
    store: Store, clock: FakeClock
) -> None:
    """entry() reads the ledger, check_stop() passes while no stop is asked, and a dry
    run's timeline() writes nothing."""
    rig = make_rig(store, clock, dry_run=True)
    rig.engine.check_stop()
    assert rig.engine.entry(KEY) is None
    rig.engine.timeline(event(), "seen", "cancellation seen")
    assert store.timeline.for_order("576", 42, "576") == []
    wet = make_rig(store, clock)
    wet.engine.timeline(event(), "seen", "cancellation seen", reason="buyer")
    wet.apply(Remote())
    assert wet.engine.entry(KEY) == wet.row()
    assert timeline(store) == ["seen", "attempt", "done"]


# ---------------------------------------------------------------------- dying mid-send


class Killed(BaseException):
    """The process dies while the request is in flight (SIGKILL, power loss)."""


def test_a_send_cut_short_by_death_is_held_until_it_settles(rig: Rig) -> None:
    """A row whose send never returned is not re-read (and so not re-sent) before the
    client timeout plus the settle margin: a slow write may still complete."""

    def die(plan: Plan) -> str:
        raise Killed

    def send() -> None:
        rig.engine.apply(event(), Apply(REFUND), die, Remote().reconcile)
        rig.engine.drain()

    with pytest.raises(Killed):
        send()

    row = rig.row()
    assert row.state == "pending"
    assert row.attempts == 1
    hold = DEFAULT_WRITE_TIMEOUT_SECONDS + SETTLE_MARGIN_SECONDS
    assert row.next_attempt_at == rig.later(hold)
    rig.clock.advance(1)
    assert rig.store.ledger.due(SCOPE, rig.clock.now()) == []
    rig.clock.advance(hold)
    assert [
        e.idempotency_key for e in rig.store.ledger.due(SCOPE, rig.clock.now())
    ] == [KEY]


def test_a_finished_send_lifts_the_hold(rig: Rig) -> None:
    """Done clears the in-flight hold; a failure replaces it with its own schedule."""
    rig.apply(Remote(sends=["12"]))
    assert rig.row().next_attempt_at is None
    assert rig.row().state == "done"


def test_giving_up_on_a_maybe_applied_write_keeps_its_settle_hold(
    store: Store, clock: FakeClock, logs: Logs
) -> None:
    """The last failed run of a write that may still complete (a timeout) needs
    attention and keeps the hold, so a person's `retry` cannot re-send it too early."""
    rig = make_rig(store, clock, max_attempts=1)
    rig.apply(Remote(sends=[unknown(refused=False, settle_seconds=30)], reads=[None]))
    entry = rig.row()
    assert entry.state == "needs_attention"
    assert entry.payload_dict()["settle_until"] == rig.later(30 + SETTLE_MARGIN_SECONDS)


def test_an_event_is_rebuilt_from_its_ledger_row(rig: Rig) -> None:
    """``Event.of``: a row's key, direction, action, known ids and payload."""
    rig.apply(Remote(), event=event(tiktok_cancel_id="c1"))
    rebuilt = Event.of(rig.row())
    assert (rebuilt.key, rebuilt.direction, rebuilt.default_action) == (
        KEY, Direction.TIKTOK_TO_MAGENTO, "magento_refund",
    )  # fmt: skip
    assert rebuilt.ids == {"tiktok_order_id": "576", "tiktok_cancel_id": "c1",
                           "magento_entity_id": 42, "magento_creditmemo_id": 12}  # fmt: skip
    assert rebuilt.payload["cancel_id"] == "c1"


def test_other_cursor_streams_start_unknown_and_only_move_forward(rig: Rig) -> None:
    engine = rig.engine
    assert engine.stream_position("tiktok.cancelled_orders") is None
    engine.advance_cursor(Direction.TIKTOK_TO_MAGENTO, 100,
                          stream="tiktok.cancelled_orders")  # fmt: skip
    engine.advance_cursor(Direction.TIKTOK_TO_MAGENTO, 90,
                          stream="tiktok.cancelled_orders")  # fmt: skip
    assert engine.stream_position("tiktok.cancelled_orders") == 100


def test_wait_for_returns_once_the_orders_action_is_recorded(rig: Rig) -> None:
    remote = Remote()
    rig.engine.apply(event(), Apply(REFUND), remote.execute, remote.reconcile)
    rig.engine.wait_for({"tiktok_order_id": "576"})
    assert rig.row().state == "done"


@pytest.mark.parametrize(
    ("ids", "keys"),
    [
        (
            {"tiktok_order_id": "576", "magento_entity_id": 42},
            ["tiktok:576", "magento:42"],
        ),
        ({"tiktok_order_id": None, "magento_entity_id": 42}, ["magento:42"]),
        ({"tiktok_order_id": "576", "magento_entity_id": None}, ["tiktok:576"]),
        ({}, []),
    ],
)
def test_an_events_orders_are_the_ones_it_knows(
    ids: dict[str, Any], keys: list[str]
) -> None:
    assert list(order_keys(ids)) == keys
