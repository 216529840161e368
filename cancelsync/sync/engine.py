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

Every other error of a send is looked up in one declared table, ``SEND_ERRORS`` (error class →
``OnSendError``: re-read first or not, re-send or re-plan, then ``failed`` or
``needs_attention``), along the error's MRO so the most specific row wins.

**One bad event never stops the others**: ``event_scope`` turns any API or data error while
handling one event (a read included) into that event's failure — retryable → ``failed`` with
backoff, re-driven by the retry pass; anything else → ``needs_attention`` with the platform's
code and message. ``AuthError`` (store-wide) and ``StopRequested`` propagate.

Every action is one structured log event and one timeline entry (for ``explain``). Each
event's ledger rows commit on their own and the cursor moves after the page's events are
recorded; why that order is safe is told in ``cancelsync.store``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from functools import partial
from types import MappingProxyType
from typing import Any

import structlog

from cancelsync.clients.http import RetryPolicy
from cancelsync.clock import Clock
from cancelsync.config import StoreConfig, WorkerConfig
from cancelsync.directions import Direction
from cancelsync.errors import (
    AlreadyAppliedError,
    ApiError,
    AuthError,
    CancelSyncError,
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
from cancelsync.store import UNSET, LedgerEntry, Store
from cancelsync.sync.flights import Flights, Steps, Thunk

log = structlog.get_logger("cancelsync.sync")

FINAL_STATES = frozenset({"done", "skipped", "needs_attention"})


class Unknown:
    """A ledger row not read yet (``None`` would mean "read: there is none")."""


UNKNOWN = Unknown()


class StopRequested(Exception):
    """SIGTERM/SIGINT arrived: stop after the action in flight, before the next event."""


MAX_BACKOFF_SECONDS = 3600
# After a write that may still be in flight (timeout, dropped connection, 502/504), wait at
# least the client timeout plus this before re-reading and maybe sending again: the server
# may finish the request after we stopped waiting for it.
SETTLE_MARGIN_SECONDS = 60
DEFAULT_WRITE_TIMEOUT_SECONDS = 30.0  # the clients' default timeout_seconds
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

    @classmethod
    def of(cls, entry: LedgerEntry) -> Event:
        """The event a ledger row stands for (e.g. a due retry's, whose failure is
        recorded on that row)."""
        ids = {
            "tiktok_order_id": entry.tiktok_order_id,
            "tiktok_cancel_id": entry.tiktok_cancel_id,
            "magento_entity_id": entry.magento_entity_id,
            "magento_increment_id": entry.magento_increment_id,
            "magento_creditmemo_id": entry.magento_creditmemo_id,
        }
        return cls(
            entry.idempotency_key, entry.direction, entry.action,
            {k: v for k, v in ids.items() if v is not None}, entry.payload_dict(),
        )  # fmt: skip


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


class Then(StrEnum):
    """Where a failed send ends when nothing more can be done about it in this run."""

    RAISE = "raise"  # store-wide: the row stays pending and the store's cycle stops
    FAILED = "failed"  # tried again in a later run, after the backoff
    ATTENTION = "needs_attention"  # a person must look


@dataclass(frozen=True)
class OnSendError:
    """What a send that raised one class of error leads to.

    Attributes:
        then: the outcome recorded when nothing more can be done in this run.
        look_first: re-read the remote side first, as the write may have worked anyway:
            found → ``done``; the re-read failing → ``failed`` (re-read next time).
        resend_refused: a write the server refused (``OutcomeUnknownError.refused``) is
            re-read and sent again in this run while the retry policy allows.
        replan: ask the direction for another plan, once per event and run.
        message: the recorded reason, ``str.format``-ted with ``exc``.
    """

    then: Then
    look_first: bool = False
    resend_refused: bool = False
    replan: bool = False
    message: str = "{exc}"


# The error → outcome table of a send (``execute``). Looked up along the error's MRO, so the
# most specific class wins (``NotFoundError`` takes the ``FatalApiError`` row); anything that
# is neither an ``ApiError`` nor a ``DataError`` is a bug and propagates.
SEND_ERRORS: Mapping[type[CancelSyncError], OnSendError] = MappingProxyType({
    # Credentials are store-wide: leave the row pending (reconciled next time) and let the
    # cycle stop for this store.
    AuthError: OnSendError(Then.RAISE),
    # Refused: re-read, then re-send in this run. Maybe applied: re-read, then ``failed``
    # with a settle time, never re-sent in this run.
    OutcomeUnknownError: OnSendError(Then.FAILED, look_first=True, resend_refused=True),
    AlreadyAppliedError: OnSendError(
        Then.ATTENTION, look_first=True,
        message="{exc.message} (the platform says it is already done, but cancelsync "
        "cannot see the effect)",
    ),
    NotCancellableError: OnSendError(
        Then.ATTENTION,
        message="TikTok will not cancel: {exc.message}; handle it as a return/refund in "
        "Seller Center",
    ),
    ConfigApiError: OnSendError(
        Then.ATTENTION, replan=True, message="configuration problem: {exc}"
    ),
    # A refusal can also mean "already there" in words we do not recognise (e.g.
    # Magento's item-quantity message on a repeated refund): look first.
    FatalApiError: OnSendError(Then.ATTENTION, look_first=True),
    # Not from a write's transport (it raises OutcomeUnknownError), e.g. a read inside
    # ``execute``: nothing was sent by it.
    RetryableApiError: OnSendError(Then.FAILED),
    ApiError: OnSendError(Then.FAILED),
    # Answered, but the reply is unreadable: the write may well have worked.
    DataError: OnSendError(
        Then.FAILED, look_first=True, message="unreadable reply: {exc}"
    ),
})  # fmt: skip


def on_send_error(exc: ApiError | DataError) -> OnSendError:
    """The ``SEND_ERRORS`` row of an error: its own class's, else its nearest base's."""
    return next(SEND_ERRORS[cls] for cls in type(exc).__mro__ if cls in SEND_ERRORS)


@dataclass
class _Sending:
    """One event's write in this run: the plan being sent and how often it was sent."""

    event: Event
    plan: Plan
    note: str
    execute: Executor
    reconcile: Reconciler
    replan: Replanner | None  # None once used: one re-plan per event and run
    sends: int = 0


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
        write_timeout_seconds: float = DEFAULT_WRITE_TIMEOUT_SECONDS,
    ) -> None:
        self.should_stop = should_stop
        # A send's row holds until then: if this process dies mid-send, the write may
        # still complete on the server, so no later run may re-read (and re-send) sooner.
        self.in_flight_hold = timedelta(
            seconds=write_timeout_seconds + SETTLE_MARGIN_SECONDS
        )
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
        # Actions in flight at once (a dry run sends nothing: one at a time).
        self.flights = Flights(1 if dry_run else worker.max_in_flight)

    def check_stop(self) -> None:
        """Called between events: a stop request ends the cycle here (cursor untouched)."""
        if self.should_stop():
            raise StopRequested

    # ------------------------------------------------------------------ cursors

    def cursor(self, direction: Direction) -> tuple[int | None, bool]:
        """``(position, fresh)`` of a direction's cursor: fresh for a new store or a
        direction just switched on (noted off after its last fresh run)."""
        current = self.store.cursors.get(self.scope, direction.stream)
        switch = self.store.switches.last(self.scope, direction)
        switched_on = switch is not None and not switch.enabled
        position = current.position if current else None
        return position, current is None or switched_on

    def stream_position(self, stream: str) -> int | None:
        """The stored position of any cursor stream of this scope (``None``: none yet)."""
        current = self.store.cursors.get(self.scope, stream)
        return current.position if current else None

    def advance_cursor(
        self, direction: Direction, position: int, *, stream: str | None = None
    ) -> None:
        """Move a cursor forward in its own unit of work; never back, never in a dry run.

        Called only once the events below ``position`` are recorded in the ledger.
        ``stream``: another stream of the direction than its own (``direction.stream``).
        """
        if self.dry_run:
            return
        stream = stream or direction.stream
        current = self.store.cursors.get(self.scope, stream)
        if current is not None and position <= current.position:
            return  # out-of-order items or an overlap re-read
        with self.store.unit_of_work():
            self.store.cursors.advance(self.scope, stream, position, self.clock.now())

    def note_direction(self, direction: Direction, *, enabled: bool) -> None:
        """Note a direction off (each cycle it is) or run fresh (``enabled``), so that
        switching it back on starts fresh."""
        if self.dry_run:
            return
        self.store.switches.note(
            self.scope, direction, enabled=enabled, now=self.clock.now()
        )

    # ------------------------------------------------------------------ ledger helpers

    def entry(self, key: str) -> LedgerEntry | None:
        return self.store.ledger.get(key)

    def timeline(
        self,
        event: Event,
        kind: str,
        message: str,
        *,
        entry: LedgerEntry | None = None,
        **details: Any,
    ) -> None:
        """One timeline entry of the event (``entry``: its ledger row, when at hand)."""
        if self.dry_run:
            return
        entry = entry or self.store.ledger.get(event.key)
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
        """Record a decision that needs no remote write (done / skipped / attention), with
        its ``code`` (when it has one) as the row's ``reason_code``."""
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
        reason_code = _code(decision)
        existing = self.store.ledger.get(event.key)
        with self.store.unit_of_work():
            if existing is None:
                self.store.ledger.begin(
                    event.key, scope=self.scope, store_name=self.cfg.name,
                    direction=event.direction, action=event.default_action, now=now,
                    state=state[decision.outcome], payload=event.payload,
                    reason=reason, reason_code=reason_code, **event.ids,
                )  # fmt: skip
            else:
                self.store.ledger.update(
                    event.key, now, state=state[decision.outcome], reason=reason,
                    reason_code=reason_code, next_attempt_at=None,
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
        """Carry out one decision; ``Apply`` goes through the exactly-once protocol.

        The protocol runs as an action in flight (``cancelsync.sync.flights``): inline
        with ``max_in_flight = 1``, else its remote calls go to worker threads while its
        ledger rows are written here, on the engine's thread. Its errors are its event's
        (its own ``event_scope``).
        """
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
        sending = _Sending(event, plan, decision.note, execute, reconcile, replan)
        self.flights.launch(order_keys(event.ids), self._action(sending, existing))

    def wait_for(self, ids: Mapping[str, Any]) -> None:
        """Before reading and deciding an event of these orders: let the action in
        flight for them finish first (actions of one order stay in order)."""
        self.flights.wait_for(order_keys(ids))

    def drain(self) -> None:
        """Let every action in flight finish (a page's cursor moves after this)."""
        self.flights.drain()

    def _action(self, s: _Sending, existing: LedgerEntry | None) -> Steps:
        """One event's protocol; yields its remote calls (see ``flights``)."""
        with self.event_scope(s.event):
            # Tried before (failed, crashed, re-queued: ``retry`` resets the attempt
            # count, so the row's existence is what counts): look before writing again.
            if existing is not None and (
                yield from self._look_first(s.event, s.plan.kind, s.plan, s.reconcile)
            ):
                return
            yield from self._send(s, existing)

    def _send(
        self, s: _Sending, existing: LedgerEntry | Unknown | None
    ) -> Generator[Thunk, Any, None]:
        """Send, and send again while ``_after_send_error`` says so (see ``SEND_ERRORS``).

        ``existing``: the row as read just before the first send (re-read before each
        later one, which follows a re-read and an outcome)."""
        while True:
            s.sends += 1
            self._begin_attempt(s.event, s.plan, s.note, existing)
            existing = UNKNOWN
            try:
                remote_id = yield partial(s.execute, s.plan)
            except (ApiError, DataError) as exc:
                rule = on_send_error(exc)
                if rule.then is Then.RAISE:
                    raise
                if (yield from self._after_send_error(s, exc, rule)):
                    continue
                return
            self._done(s.event, s.plan, remote_id, reconciled=False)
            return

    def _after_send_error(
        self, s: _Sending, exc: ApiError | DataError, rule: OnSendError
    ) -> Generator[Thunk, Any, bool]:
        """Carry out the table row of a failed send; True when it is to be sent again."""
        event, plan = s.event, s.plan
        if rule.resend_refused and self._may_resend(s, exc):
            yield self._wait_before_resend(event, plan, s.sends, exc)
            return not (
                yield from self._look_first(event, plan.kind, plan, s.reconcile)
            )
        if rule.replan and isinstance(exc, ConfigApiError):
            new = (yield partial(s.replan, plan, exc)) if s.replan is not None else None
            s.replan = None
            if isinstance(new, Apply):
                return (yield from self._switch_plan(s, new))
            if isinstance(new, Attention):
                self._attention(event, plan.kind, new.reason, code=_code(new))
                return False
        if rule.look_first and (
            yield from self._found_done_or_failed(event, plan, s.reconcile, exc)
        ):
            return False
        message = rule.message.format(exc=exc)
        if rule.then is Then.ATTENTION:
            self._attention(event, plan.kind, message)
        else:
            self._failed(event, plan.kind, message, settle_seconds=_settle_seconds(exc))
        return False

    def _may_resend(self, s: _Sending, exc: ApiError | DataError) -> bool:
        """A refused write may go again in this run: the policy allows, no stop asked."""
        return (
            isinstance(exc, OutcomeUnknownError)
            and exc.refused
            and s.sends < self.retry.attempts
            and not self.should_stop()
        )

    def _switch_plan(self, s: _Sending, new: Apply) -> Generator[Thunk, Any, bool]:
        """Send another plan for the event (after a re-read finds the first one's effect
        missing); True when it is to be sent."""
        event, plan = s.event, s.plan
        self._log_action(event, "replanned", action=plan.kind, reason=new.note,
                         plan=_plan_summary(new.plan))  # fmt: skip
        self.timeline(event, "replanned", new.note, plan=_plan_summary(new.plan))
        if (yield from self._look_first(event, plan.kind, plan, s.reconcile)):
            return False
        s.plan, s.note, s.sends = new.plan, new.note, 0
        return True

    def _wait_before_resend(
        self, event: Event, plan: Plan, sends: int, exc: ApiError | DataError
    ) -> Thunk:
        """The backoff before a re-send, logged here and slept in a worker thread."""
        wait = self.retry.delay(sends, exc)
        self._log_action(event, "resend", action=plan.kind, attempt=sends,
                         sleep_seconds=round(wait, 2), error=str(exc),
                         level="warning")  # fmt: skip
        return partial(self.retry.sleep, wait)

    def _begin_attempt(
        self,
        event: Event,
        plan: Plan,
        note: str,
        existing: LedgerEntry | Unknown | None = UNKNOWN,
    ) -> int:
        """Commit the row as ``pending`` with this send counted, before the send."""
        now = self.clock.now()
        if isinstance(existing, Unknown):
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
            # next_attempt_at on a pending row is a hold, not a schedule: it only
            # matters when the process dies during the send (the outcome then
            # settles first); every finished send overwrites it.
            entry = self.store.ledger.update(
                event.key, now, state="pending", action=plan.kind, attempts=attempts,
                payload=payload, next_attempt_at=now + self.in_flight_hold,
            )  # fmt: skip
            self.timeline(event, "attempt", f"{plan.kind} attempt {attempts}",
                          entry=entry, plan=_plan_summary(plan))  # fmt: skip
        return attempts

    def _look_first(
        self, event: Event, action: str, plan: Plan, reconcile: Reconciler
    ) -> Generator[Thunk, Any, bool]:
        """Re-read before a (re-)send. True when nothing may be sent now: the effect is
        there (recorded done) or the re-read failed (recorded as the event's failure)."""
        try:
            return (yield from self._found_done(event, plan, reconcile))
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
    ) -> Generator[Thunk, Any, bool]:
        """After a failed send: True when the effect is there (done) or the re-read
        itself failed (then the row is ``failed`` and is re-read next time)."""
        try:
            return (yield from self._found_done(event, plan, reconcile))
        except AuthError:
            raise
        except (ApiError, DataError) as exc:
            self._failed(event, plan.kind, f"{cause}; then the re-read failed: {exc}",
                         settle_seconds=_settle_seconds(cause))  # fmt: skip
            return True

    def _found_done(
        self, event: Event, plan: Plan, reconcile: Reconciler
    ) -> Generator[Thunk, Any, bool]:
        """Re-read the remote side; when the effect is there, record it done.

        Errors of the re-read propagate: "could not look" must never mean "not there".
        """
        remote_id = yield partial(reconcile, plan)
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
        created_memo = (
            plan.kind == "magento_refund"
            and remote_id.isascii()
            and remote_id.isdigit()
        )
        with self.store.unit_of_work():
            entry = self.store.ledger.update(
                event.key, now, state="done", remote_id=remote_id, last_error=None,
                next_attempt_at=None,
                magento_creditmemo_id=int(remote_id) if created_memo else UNSET,
            )  # fmt: skip
            self.timeline(
                event, "done",
                f"{plan.kind} done (remote id {remote_id})"
                + (" — found on re-read, not sent again" if reconciled else ""),
                entry=entry,
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
        # A write that may still complete is held until it has settled, whatever comes
        # next: not even `retry` may re-send it sooner (``Ledger.requeue`` keeps this).
        settle_until = (
            now + timedelta(seconds=settle_seconds + SETTLE_MARGIN_SECONDS)
            if settle_seconds is not None
            else None
        )
        if rounds >= self.worker.max_attempts:
            sends = existing.attempts if existing else 0
            self._attention(event, action, f"gave up after {rounds} failed run(s) "
                            f"({sends} send(s)): {error}")  # fmt: skip
            if settle_until is not None and not self.dry_run:
                self.store.ledger.hold_until(event.key, settle_until, now)
            return
        delay = min(
            self.worker.retry_backoff_seconds * 2 ** (rounds - 1), MAX_BACKOFF_SECONDS
        )
        if settle_seconds is not None:
            delay = max(delay, settle_seconds + SETTLE_MARGIN_SECONDS)
        next_at = now + timedelta(seconds=delay)
        if self.dry_run:
            self._count_failure(event, action, error, next_at)
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
                next_attempt_at=next_at, payload=payload,
            )  # fmt: skip
            if settle_until is not None:
                self.store.ledger.hold_until(event.key, settle_until, now)
            self.timeline(event, "failed", f"{action} failed: {error}",
                          next_attempt_at=next_at)  # fmt: skip
        self._count_failure(event, action, error, next_at)

    def _count_failure(
        self, event: Event, action: str, error: str, next_attempt_at: datetime
    ) -> None:
        self.report.failures += 1
        self.report.counts["failed"] += 1
        self._log_action(event, "failed", action=action, error=error,
                         next_attempt_at=next_attempt_at.isoformat(timespec="seconds"),
                         level="warning")  # fmt: skip

    def _attention(
        self, event: Event, action: str, reason: str, *, code: str | None = None
    ) -> None:
        """``needs_attention`` with this reason; ``code`` replaces the row's reason_code
        (an error's reason has none)."""
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
                    reason_code=code, **event.ids,
                )  # fmt: skip
            self.store.ledger.update(
                event.key, now, state="needs_attention", reason=reason,
                reason_code=code, next_attempt_at=None,
            )  # fmt: skip
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


def _settle_seconds(exc: ApiError | DataError) -> float | None:
    """How long a write may still be completing on the server: only a maybe-applied one."""
    if isinstance(exc, OutcomeUnknownError) and not exc.refused:
        return exc.settle_seconds
    return None


def _code(decision: Decision) -> str | None:
    """A decision's ``code`` as stored in ``reason_code`` (decisions may have none)."""
    code = getattr(decision, "code", None)
    return None if code is None else str(code)


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


def order_keys(ids: Mapping[str, Any]) -> Iterable[str]:
    """The orders an event touches, as ``Flights`` keys: its TikTok and Magento orders
    (either may be unknown yet; a direction waits on the one it knows)."""
    if ids.get("tiktok_order_id"):
        yield f"tiktok:{ids['tiktok_order_id']}"
    if ids.get("magento_entity_id") is not None:
        yield f"magento:{ids['magento_entity_id']}"
