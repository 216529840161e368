"""The engine core: the one place where decisions meet I/O.

``Engine.apply`` turns a rule's decision for one event into ledger rows and, for ``Apply``,
one remote write, following the exactly-once protocol:

1. the ledger row (deterministic idempotency key) is committed as ``pending`` with the attempt
   counted *before* every send, including each re-send;
2. a row that already exists and is not final (failed, pending after a crash, re-queued by
   ``retry``) means an earlier send may have worked: the remote state is re-read first and the
   write is only sent if its effect is really missing. A re-read that fails sends nothing;
3. the result is recorded: ``done`` with the remote id, ``failed`` with a next attempt time
   (retryable), or ``needs_attention``.

**Write failures** (``OutcomeUnknownError`` from the transport, which never re-sends a write):

- *Refused*: the server answered "not done" (HTTP 429/500/503, TikTok 36009002, 36009003,
  10006402) or the request never left this host. After a re-read confirms the effect is
  missing, the write is sent again **in the same run** under the transport's ``RetryPolicy``
  (bounded attempts, exponential backoff with jitter, ``Retry-After`` honoured, injected
  sleep), each re-send preceded by a re-read and counted in the ledger. A blip heals without
  waiting ``retry_backoff_seconds`` and without failing the run.
- TikTok 25001028 "reverse lock failed" is a lock conflict whose retry-safety is unconfirmed:
  it is treated as refused, so it is never re-sent blind, only after the re-read shows the
  order still not cancelled, and after the policy's backoff.
- *Maybe applied*: a timeout, a dropped connection, a cut-off reply, a gateway 502/504 or
  TikTok 36009007. The server may still be working on it (a slow refund can complete after
  we gave up), so it is **never re-sent in the same run**: after one re-read it is ``failed``
  with ``next_attempt_at`` at least the client timeout + ``SETTLE_MARGIN_SECONDS`` away, and
  the next attempt re-reads first.

Only when the in-run retries are exhausted does the event become ``failed`` (the run exits 1).
``max_attempts`` counts those failed *runs*, not sends: it turns into ``needs_attention`` after
that many. A TikTok refusal of the cancel reason may be re-planned once (``replan``).

**One bad event never stops the others**: ``event_scope`` turns any API or data error while
handling one event (a read included) into that event's failure — retryable → ``failed`` with
backoff, re-driven by the retry pass; anything else → ``needs_attention`` with the platform's
code and message. ``AuthError`` (store-wide) and ``StopRequested`` propagate.

Every action is one structured log event and one timeline entry (for ``explain``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog

from cancelsync.clients.http import RetryPolicy
from cancelsync.clock import Clock
from cancelsync.config import StoreConfig, WorkerConfig
from cancelsync.errors import (
    AlreadyAppliedError,
    ApiError,
    AuthError,
    ConfigApiError,
    DataError,
    FatalApiError,
    NotCancellableError,
    OutcomeUnknownError,
    RetryableApiError,
)
from cancelsync.rules.decisions import (
    Apply,
    Attention,
    Decision,
    Defer,
    Plan,
)
from cancelsync.store import LedgerEntry, Store
from cancelsync.store.db import iso

log = structlog.get_logger("cancelsync.sync")

FINAL_STATES = frozenset({"done", "skipped", "needs_attention"})


class StopRequested(Exception):
    """SIGTERM/SIGINT arrived: stop after the action in flight, before the next event."""


MAX_BACKOFF_SECONDS = 3600
# After a write that may still be in flight (timeout, dropped connection, 502/504), wait at
# least the client timeout plus this before re-reading and maybe sending again: the server
# may finish the request after we stopped waiting for it.
SETTLE_MARGIN_SECONDS = 60
# This many events in a row failing with retryable errors, none handled in between, means
# the platform is down rather than one event bad: the store's cycle stops there (cursors
# kept, nothing lost) instead of failing every event of the backlog one by one.
OUTAGE_STREAK = 3


@dataclass
class CycleReport:
    """What one cycle of one store did; feeds the summary line, ``status`` and exit codes."""

    store_name: str
    scope: str
    run_id: str
    started_at: datetime
    dry_run: bool = False
    finished_at: datetime | None = None
    counts: Counter[str] = field(default_factory=Counter)
    new_attention: int = 0
    failures: int = 0
    error: str | None = None
    planned: list[dict[str, Any]] = field(default_factory=list)  # dry-run decisions

    @property
    def ok(self) -> bool:
        """Nothing in this run needs a person: no failure, no new attention item."""
        return self.error is None and self.failures == 0 and self.new_attention == 0

    @property
    def outcome(self) -> str:
        if self.error is not None:
            return "error"
        if self.failures:
            return "failures"
        if self.new_attention:
            return "attention"
        return "ok"


@dataclass(frozen=True)
class Event:
    """The identity of one event the engine decides about."""

    key: str  # idempotency key
    direction: str  # tiktok_to_magento | magento_to_tiktok
    default_action: str  # the ledger ``action`` when no plan is applied
    ids: dict[str, Any]  # tiktok_order_id, tiktok_cancel_id, magento_entity_id, ...
    payload: dict[str, Any]  # what a retry needs to re-drive the event


@dataclass
class EventScope:
    """The event being handled; a handler swaps in a richer one once it knows more ids."""

    event: Event


Executor = Callable[[Plan], str]  # performs the write, returns the remote id
Reconciler = Callable[[Plan], str | None]  # the remote id if the effect already exists
# Called once when the platform refuses a write as a configuration problem (e.g. a cancel
# reason TikTok no longer takes): another plan for the same event, an attention item that
# says more than the refusal, or None (the refusal is reported as it is).
Replanner = Callable[[Plan, ConfigApiError], Apply | Attention | None]


class Engine:
    """Shared machinery for both directions of one store in one cycle."""

    def __init__(
        self,
        *,
        store: Store,
        cfg: StoreConfig,
        worker: WorkerConfig,
        scope: str,
        clock: Clock,
        report: CycleReport,
        dry_run: bool = False,
        should_stop: Callable[[], bool] = lambda: False,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.should_stop = should_stop
        self.retry = retry or RetryPolicy()
        self._retryable_streak = 0  # events failed in a row with retryable errors
        self.store = store
        self.cfg = cfg
        self.worker = worker
        self.scope = scope
        self.clock = clock
        self.report = report
        self.dry_run = dry_run
        self.log = log.bind(store=cfg.name, run_id=report.run_id)

    def check_stop(self) -> None:
        """Called between events: a stop request ends the cycle here (cursor untouched)."""
        if self.should_stop():
            raise StopRequested

    # ------------------------------------------------------------------ cursors

    def cursor(self, stream: str) -> tuple[int | None, bool]:
        """``(position, fresh)``: fresh for a new store or a direction just switched on
        (it was off in a later cycle than the last one it ran in)."""
        cursors = self.store.cursors
        current = cursors.get(self.scope, stream)
        disabled = cursors.get(self.scope, stream + ".disabled")
        resumed = cursors.get(self.scope, stream + ".resumed")
        newly_enabled = disabled is not None and (
            resumed is None or disabled.position > resumed.position
        )
        position = current.position if current else None
        return position, current is None or newly_enabled

    def advance_cursor(self, stream: str, position: int) -> None:
        """Move a cursor forward in its own unit of work; never back, never in a dry run."""
        if self.dry_run:
            return
        current = self.store.cursors.get(self.scope, stream)
        if current is not None and position <= current.position:
            return  # out-of-order items or an overlap re-read
        with self.store.unit_of_work():
            self.store.cursors.advance(self.scope, stream, position, self.clock.now())

    def note_direction(self, stream: str, *, enabled: bool) -> None:
        """Remember when a direction was off / ran, so switching it on starts fresh."""
        if self.dry_run:
            return
        now = self.clock.now()
        marker = stream + (".resumed" if enabled else ".disabled")
        self.store.cursors.advance(self.scope, marker, int(now.timestamp()), now)

    # ------------------------------------------------------------------ ledger helpers

    def entry(self, key: str) -> LedgerEntry | None:
        return self.store.ledger.get(key)

    def timeline(self, event: Event, kind: str, message: str, **details: Any) -> None:
        if self.dry_run:
            return
        entry = self.store.ledger.get(event.key)
        self.store.timeline.add(
            at=self.clock.now(),
            scope=self.scope,
            kind=kind,
            message=message,
            run_id=self.report.run_id,
            action_id=entry.action_id if entry else None,
            tiktok_order_id=event.ids.get("tiktok_order_id"),
            magento_entity_id=event.ids.get("magento_entity_id"),
            magento_increment_id=event.ids.get("magento_increment_id"),
            details=details or None,
        )

    # ------------------------------------------------------------------ decisions

    def record(self, event: Event, decision: Decision) -> None:
        """Record a decision that needs no remote write (done / skipped / attention)."""
        now = self.clock.now()
        state = {
            "done": "done",
            "skipped": "skipped",
            "needs_attention": "needs_attention",
        }
        self.report.counts[decision.outcome] += 1
        reason = getattr(decision, "reason", "")
        self._log_action(event, decision.outcome, reason=reason)
        if isinstance(decision, Defer):
            return  # looked at again next cycle; nothing stored
        if self.dry_run:
            self.report.planned.append(
                {
                    "key": event.key,
                    "decision": decision.outcome,
                    "reason": reason,
                    **event.ids,
                }
            )
            if isinstance(decision, Attention):
                self.report.new_attention += 1
            return
        existing = self.store.ledger.get(event.key)
        with self.store.unit_of_work():
            if existing is None:
                self.store.ledger.begin(
                    event.key, scope=self.scope, store_name=self.cfg.name,
                    direction=event.direction, action=event.default_action, now=now,
                    state=state[decision.outcome], payload=event.payload,
                    reason=reason, **event.ids,
                )  # fmt: skip
            else:
                self.store.ledger.update(
                    event.key, now, state=state[decision.outcome], reason=reason,
                    next_attempt_at=None,
                )  # fmt: skip
            self.timeline(event, decision.outcome, reason)
        if isinstance(decision, Attention):
            self._note_attention(event.key)

    def apply(
        self,
        event: Event,
        decision: Decision,
        execute: Executor,
        reconcile: Reconciler,
        replan: Replanner | None = None,
    ) -> None:
        """Carry out one decision; ``Apply`` goes through the exactly-once protocol."""
        if not isinstance(decision, Apply):
            self.record(event, decision)
            return
        plan = decision.plan
        if self.dry_run:
            self.report.counts["would_apply"] += 1
            self.report.planned.append(
                {"key": event.key, "decision": "apply", "action": plan.kind,
                 "plan": _plan_summary(plan), **event.ids}
            )  # fmt: skip
            self._log_action(
                event, "would_apply", action=plan.kind, plan=_plan_summary(plan)
            )
            return
        existing = self.store.ledger.get(event.key)
        if existing is not None and existing.state in FINAL_STATES:
            return
        # Tried before (failed, crashed, re-queued: ``retry`` resets the attempt count, so
        # the row's existence is what counts): look before writing again.
        if existing is not None and self._look_first(event, plan.kind, plan, reconcile):
            return
        self._send(event, decision, execute, reconcile, replan)

    def _send(
        self,
        event: Event,
        decision: Apply,
        execute: Executor,
        reconcile: Reconciler,
        replan: Replanner | None,
    ) -> None:
        """Send, and re-send refused writes in this run under the retry policy."""
        plan, note = decision.plan, decision.note
        sends = 0  # sends of this plan in this run
        while True:
            sends += 1
            self._begin_attempt(event, plan, note)
            try:
                remote_id = execute(plan)
            except OutcomeUnknownError as exc:
                if (
                    exc.refused
                    and sends < self.retry.attempts
                    and not self.should_stop()
                ):
                    self._wait_before_resend(event, plan, sends, exc)
                    if self._look_first(event, plan.kind, plan, reconcile):
                        return
                    continue
                if not self._found_done_or_failed(event, plan, reconcile, exc):
                    settle = None if exc.refused else exc.settle_seconds
                    self._failed(event, plan.kind, str(exc), settle_seconds=settle)
                return
            except AlreadyAppliedError as exc:
                if not self._found_done_or_failed(event, plan, reconcile, exc):
                    self._attention(event, plan.kind, f"{exc.message} (the platform says "
                                    "it is already done, but cancelsync cannot see the "
                                    "effect)")  # fmt: skip
                return
            except RetryableApiError as exc:
                # Not from a write's transport (it raises OutcomeUnknownError), e.g. a
                # read inside ``execute``: nothing was sent by it.
                self._failed(event, plan.kind, str(exc))
                return
            except AuthError:
                # Credentials are store-wide: leave the row pending (reconciled next time)
                # and let the cycle stop for this store.
                raise
            except NotCancellableError as exc:
                self._attention(event, plan.kind, f"TikTok will not cancel: {exc.message}; "
                                "handle it as a return/refund in Seller Center")  # fmt: skip
                return
            except ConfigApiError as exc:
                new = replan(plan, exc) if replan is not None else None
                replan = None  # once per event and run
                if isinstance(new, Apply):
                    self._log_action(event, "replanned", action=plan.kind,
                                     reason=new.note, plan=_plan_summary(new.plan))  # fmt: skip
                    self.timeline(event, "replanned", new.note,
                                  plan=_plan_summary(new.plan))  # fmt: skip
                    if self._look_first(event, plan.kind, plan, reconcile):
                        return
                    plan, note, sends = new.plan, new.note, 0
                    continue
                if isinstance(new, Attention):
                    self._attention(event, plan.kind, new.reason)
                    return
                self._attention(event, plan.kind, f"configuration problem: {exc}")
                return
            except FatalApiError as exc:
                # A refusal can also mean "already there" in words we do not recognise
                # (e.g. Magento's item-quantity message on a repeated refund): look first.
                if not self._found_done_or_failed(event, plan, reconcile, exc):
                    self._attention(event, plan.kind, str(exc))
                return
            except ApiError as exc:
                self._failed(event, plan.kind, str(exc))
                return
            except DataError as exc:
                # Answered, but the reply is unreadable: the write may well have worked.
                if not self._found_done_or_failed(event, plan, reconcile, exc):
                    self._failed(event, plan.kind, f"unreadable reply: {exc}")
                return
            self._done(event, plan, remote_id, reconciled=False)
            return

    def _wait_before_resend(
        self, event: Event, plan: Plan, sends: int, exc: OutcomeUnknownError
    ) -> None:
        wait = self.retry.delay(sends, exc)
        self._log_action(event, "resend", action=plan.kind, attempt=sends,
                         sleep_seconds=round(wait, 2), error=str(exc),
                         level="warning")  # fmt: skip
        self.retry.sleep(wait)

    def _begin_attempt(self, event: Event, plan: Plan, note: str) -> int:
        """Commit the row as ``pending`` with this send counted, before the send."""
        now = self.clock.now()
        existing = self.store.ledger.get(event.key)
        payload: dict[str, Any] = {**event.payload, "plan": _plan_summary(plan)}
        rounds = _failed_rounds(existing)
        if rounds:
            payload["failed_rounds"] = rounds
        attempts = (existing.attempts if existing else 0) + 1
        with self.store.unit_of_work():
            if existing is None:
                self.store.ledger.begin(
                    event.key, scope=self.scope, store_name=self.cfg.name,
                    direction=event.direction, action=plan.kind, now=now,
                    payload=payload, reason=note or None, **event.ids,
                )  # fmt: skip
            self.store.ledger.update(
                event.key, now, state="pending", action=plan.kind, attempts=attempts,
                payload=payload, next_attempt_at=None,
            )  # fmt: skip
            self.timeline(event, "attempt", f"{plan.kind} attempt {attempts}",
                          plan=_plan_summary(plan))  # fmt: skip
        return attempts

    def _look_first(
        self, event: Event, action: str, plan: Plan, reconcile: Reconciler
    ) -> bool:
        """Re-read before a (re-)send. True when nothing may be sent now: the effect is
        there (recorded done) or the re-read failed (recorded as the event's failure)."""
        try:
            return self._found_done(event, plan, reconcile)
        except AuthError:
            raise
        except (ApiError, DataError) as exc:
            self.fail_event(event, exc, action=action, what="re-read before sending")
            return True

    def _found_done_or_failed(
        self,
        event: Event,
        plan: Plan,
        reconcile: Reconciler,
        cause: ApiError | DataError,
    ) -> bool:
        """After a failed send: True when the effect is there (done) or the re-read
        itself failed (then the row is ``failed`` and is re-read next time)."""
        try:
            return self._found_done(event, plan, reconcile)
        except AuthError:
            raise
        except (ApiError, DataError) as exc:
            settle = (
                cause.settle_seconds
                if isinstance(cause, OutcomeUnknownError) and not cause.refused
                else None
            )
            self._failed(event, plan.kind, f"{cause}; then the re-read failed: {exc}",
                         settle_seconds=settle)  # fmt: skip
            return True

    def _found_done(self, event: Event, plan: Plan, reconcile: Reconciler) -> bool:
        """Re-read the remote side; when the effect is there, record it done.

        Errors of the re-read propagate: "could not look" must never mean "not there".
        """
        remote_id = reconcile(plan)
        self.log.info(
            "action.reconciled", key=event.key, action=plan.kind,
            found=remote_id is not None, remote_id=remote_id,
        )  # fmt: skip
        if remote_id is None:
            return False
        self._done(event, plan, remote_id, reconciled=True)
        return True

    # ------------------------------------------------------------------ one event's errors

    @contextmanager
    def event_scope(self, event: Event) -> Iterator[EventScope]:
        """Handle one event; an API or data error in it becomes that event's failure.

        The caller may replace ``scope.event`` once it knows more ids (so ``explain``
        finds the row). ``AuthError`` and ``StopRequested`` propagate, and so do bugs;
        so does the ``OUTAGE_STREAK``-th retryable failure in a row.
        """
        scope = EventScope(event)
        try:
            yield scope
        except AuthError:
            raise
        except RetryableApiError as exc:
            self._retryable_streak += 1
            if self._retryable_streak >= OUTAGE_STREAK:
                raise  # the platform is down: the store's cycle stops here
            self.fail_event(scope.event, exc)
        except (ApiError, DataError) as exc:
            self._retryable_streak = 0
            self.fail_event(scope.event, exc)
        else:
            self._retryable_streak = 0

    def fail_event(
        self,
        event: Event,
        exc: ApiError | DataError,
        *,
        action: str | None = None,
        what: str = "handling it",
    ) -> None:
        """Record an error as this event's outcome: retryable → ``failed`` with backoff
        (the retry pass re-drives it); anything else → ``needs_attention``."""
        existing = self.store.ledger.get(event.key)
        action = action or (existing.action if existing else event.default_action)
        if existing is not None and existing.state in FINAL_STATES:
            # Already decided (e.g. done just before a later read failed): keep it.
            self.report.failures += 1
            self.log.error("action.error_after_final", key=event.key, error=str(exc))
            return
        if isinstance(exc, RetryableApiError):
            self._failed(event, action, f"{what} failed: {exc}")
            return
        kind = "unreadable data" if isinstance(exc, DataError) else "error"
        self._attention(
            event, action,
            f"{what} failed with an {kind}: {exc} (fix the cause, then `cancelsync "
            "retry`)",
        )  # fmt: skip

    # ------------------------------------------------------------------ outcomes

    def _done(
        self, event: Event, plan: Plan, remote_id: str, *, reconciled: bool
    ) -> None:
        now = self.clock.now()
        changes: dict[str, Any] = {
            "state": "done", "remote_id": remote_id, "last_error": None,
            "next_attempt_at": None,
        }  # fmt: skip
        if plan.kind == "magento_refund" and remote_id.isdigit():
            changes["magento_creditmemo_id"] = int(remote_id)
        with self.store.unit_of_work():
            self.store.ledger.update(event.key, now, **changes)
            self.timeline(
                event, "done",
                f"{plan.kind} done (remote id {remote_id})"
                + (" — found on re-read, not sent again" if reconciled else ""),
            )  # fmt: skip
        self.report.counts["applied" if not reconciled else "reconciled"] += 1
        self._log_action(event, "done", action=plan.kind, remote_id=remote_id,
                         reconciled=reconciled)  # fmt: skip

    def _failed(
        self,
        event: Event,
        action: str,
        error: str,
        *,
        settle_seconds: float | None = None,
    ) -> None:
        """``failed`` with a next attempt time; ``needs_attention`` after max_attempts
        failed runs. ``settle_seconds``: the write may still complete, so the next
        attempt waits at least that plus ``SETTLE_MARGIN_SECONDS``."""
        now = self.clock.now()
        existing = self.store.ledger.get(event.key)
        rounds = _failed_rounds(existing) + 1
        if rounds >= self.worker.max_attempts:
            sends = existing.attempts if existing else 0
            self._attention(event, action, f"gave up after {rounds} failed run(s) "
                            f"({sends} send(s)): {error}")  # fmt: skip
            return
        delay = min(
            self.worker.retry_backoff_seconds * 2 ** (rounds - 1), MAX_BACKOFF_SECONDS
        )
        if settle_seconds is not None:
            delay = max(delay, settle_seconds + SETTLE_MARGIN_SECONDS)
        next_at = now + timedelta(seconds=delay)
        if self.dry_run:
            self._count_failure(event, action, error, iso(next_at))
            return
        with self.store.unit_of_work():
            if existing is None:
                self.store.ledger.begin(
                    event.key, scope=self.scope, store_name=self.cfg.name,
                    direction=event.direction, action=action, now=now, state="failed",
                    payload=event.payload, **event.ids,
                )  # fmt: skip
            payload = {
                **(existing.payload_dict() if existing else event.payload),
                "failed_rounds": rounds,
            }
            # The row stays "failed": its next attempt re-reads the remote side first.
            self.store.ledger.update(
                event.key, now, state="failed", last_error=error,
                next_attempt_at=iso(next_at), payload=payload,
            )  # fmt: skip
            self.timeline(event, "failed", f"{action} failed: {error}",
                          next_attempt_at=iso(next_at))  # fmt: skip
        self._count_failure(event, action, error, iso(next_at))

    def _count_failure(
        self, event: Event, action: str, error: str, next_attempt_at: str
    ) -> None:
        self.report.failures += 1
        self.report.counts["failed"] += 1
        self._log_action(event, "failed", action=action, error=error,
                         next_attempt_at=next_attempt_at, level="warning")  # fmt: skip

    def _attention(self, event: Event, action: str, reason: str) -> None:
        now = self.clock.now()
        self.report.counts["needs_attention"] += 1
        self._log_action(event, "needs_attention", action=action, reason=reason,
                         level="warning")  # fmt: skip
        if self.dry_run:
            self.report.new_attention += 1
            return
        existing = self.store.ledger.get(event.key)
        with self.store.unit_of_work():
            if existing is None:
                self.store.ledger.begin(
                    event.key, scope=self.scope, store_name=self.cfg.name,
                    direction=event.direction, action=action, now=now,
                    state="needs_attention", payload=event.payload, reason=reason,
                    **event.ids,
                )  # fmt: skip
            self.store.ledger.update(
                event.key,
                now,
                state="needs_attention",
                reason=reason,
                next_attempt_at=None,
            )
            self.timeline(event, "attention", reason)
        self._note_attention(event.key)

    def _note_attention(self, key: str) -> None:
        """Count an attention item once: only the run that first reports it exits 1."""
        entry = self.store.ledger.get(key)
        if entry is None or entry.reported_run is not None:
            return
        self.store.ledger.update(key, self.clock.now(), reported_run=self.report.run_id)
        self.report.new_attention += 1

    def _log_action(
        self, event: Event, outcome: str, level: str = "info", **fields: Any
    ) -> None:
        ids = {k: v for k, v in event.ids.items() if v is not None}
        getattr(self.log, level)(
            "action", direction=event.direction, key=event.key, outcome=outcome,
            dry_run=self.dry_run, **ids, **fields,
        )  # fmt: skip


def _failed_rounds(entry: LedgerEntry | None) -> int:
    """How many runs this action has failed in so far (``max_attempts`` counts these).

    ``retry`` re-queues a row as ``pending`` with no attempts: that starts the count over.
    """
    if entry is None or (entry.state == "pending" and entry.attempts == 0):
        return 0
    return int(entry.payload_dict().get("failed_rounds", 0))


def _plan_summary(plan: Plan) -> dict[str, Any]:
    data: dict[str, Any] = {"kind": plan.kind}
    for name, value in vars(plan).items():
        if name == "comment":
            continue
        if isinstance(value, tuple):
            data[name] = [
                list(map(str, v)) if isinstance(v, tuple) else str(v) for v in value
            ]
        else:
            data[name] = str(value) if not isinstance(value, bool | int) else value
    return data
