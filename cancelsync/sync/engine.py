"""The engine core: the one place where decisions meet I/O.

``Engine.apply`` turns a rule's decision for one event into ledger rows and, for ``Apply``,
one remote write, following the exactly-once protocol:

1. the ledger row (deterministic idempotency key) is committed as ``pending`` with the attempt
   counted *before* the remote call;
2. a row that is already ``pending`` with an earlier attempt means a previous call's outcome is
   unknown (lost response, crash): the remote state is re-read first and the write is only sent
   if its effect is really missing;
3. the result is recorded: ``done`` with the remote id, ``failed`` with a next attempt time
   (retryable; ``needs_attention`` after ``max_attempts``), or ``needs_attention``.

Every action is one structured log event and one timeline entry (for ``explain``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog

from cancelsync.clock import Clock
from cancelsync.config import StoreConfig, WorkerConfig
from cancelsync.errors import (
    AlreadyAppliedError,
    ApiError,
    AuthError,
    ConfigApiError,
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


Executor = Callable[[Plan], str]  # performs the write, returns the remote id
Reconciler = Callable[[Plan], str | None]  # the remote id if the effect already exists


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
    ) -> None:
        self.should_stop = should_stop
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
        now = self.clock.now()
        existing = self.store.ledger.get(event.key)
        if existing is not None and existing.state in FINAL_STATES:
            return
        # An earlier attempt's outcome is unknown: look before writing again.
        if (
            existing is not None
            and existing.attempts > 0
            and self._found_done(event, plan, reconcile)
        ):
            return
        payload = {**event.payload, "plan": _plan_summary(plan)}
        with self.store.unit_of_work():
            if existing is None:
                self.store.ledger.begin(
                    event.key, scope=self.scope, store_name=self.cfg.name,
                    direction=event.direction, action=plan.kind, now=now,
                    payload=payload, reason=decision.note or None, **event.ids,
                )  # fmt: skip
            attempts = (existing.attempts if existing else 0) + 1
            self.store.ledger.update(
                event.key, now, state="pending", action=plan.kind, attempts=attempts,
                payload=payload, next_attempt_at=None,
            )  # fmt: skip
            self.timeline(event, "attempt", f"{plan.kind} attempt {attempts}",
                          plan=_plan_summary(plan))  # fmt: skip
        try:
            remote_id = execute(plan)
        except OutcomeUnknownError as exc:
            if not self._found_done(event, plan, reconcile):
                self._failed(event, plan, attempts, str(exc))
            return
        except AlreadyAppliedError as exc:
            if not self._found_done(event, plan, reconcile):
                self._attention(event, plan, f"{exc.message} (the platform says it is "
                                "already done, but cancelsync cannot see the effect)")  # fmt: skip
            return
        except RetryableApiError as exc:
            self._failed(event, plan, attempts, str(exc))
            return
        except AuthError:
            # Credentials are store-wide: leave the row pending (reconciled next time) and
            # let the cycle stop for this store.
            raise
        except NotCancellableError as exc:
            self._attention(event, plan, f"TikTok will not cancel: {exc.message}; handle it "
                            "as a return/refund in Seller Center")  # fmt: skip
            return
        except ConfigApiError as exc:
            self._attention(event, plan, f"configuration problem: {exc}")
            return
        except FatalApiError as exc:
            # A refusal can also mean "already there" in words we do not recognise (e.g.
            # Magento's item-quantity message on a repeated refund): look before giving up.
            if not self._found_done(event, plan, reconcile):
                self._attention(event, plan, str(exc))
            return
        except ApiError as exc:
            self._failed(event, plan, attempts, str(exc))
            return
        self._done(event, plan, remote_id, reconciled=False)

    def _found_done(self, event: Event, plan: Plan, reconcile: Reconciler) -> bool:
        """Re-read the remote side; when the effect is there, record it done."""
        remote_id = self._reconcile(event, plan, reconcile)
        if remote_id is None:
            return False
        self._done(event, plan, remote_id, reconciled=True)
        return True

    def _reconcile(self, event: Event, plan: Plan, reconcile: Reconciler) -> str | None:
        try:
            remote_id = reconcile(plan)
        except RetryableApiError as exc:
            self.log.warning("action.reconcile_failed", key=event.key, error=str(exc))
            return None
        self.log.info(
            "action.reconciled", key=event.key, action=plan.kind,
            found=remote_id is not None, remote_id=remote_id,
        )  # fmt: skip
        return remote_id

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

    def _failed(self, event: Event, plan: Plan, attempts: int, error: str) -> None:
        now = self.clock.now()
        if attempts >= self.worker.max_attempts:
            self._attention(event, plan, f"gave up after {attempts} attempts: {error}")
            return
        delay = min(
            self.worker.retry_backoff_seconds * 2 ** (attempts - 1), MAX_BACKOFF_SECONDS
        )
        next_at = now + timedelta(seconds=delay)
        with self.store.unit_of_work():
            # The row stays "failed" with attempts > 0, so the next attempt reconciles first.
            self.store.ledger.update(
                event.key,
                now,
                state="failed",
                last_error=error,
                next_attempt_at=iso(next_at),
            )
            self.timeline(event, "failed", f"{plan.kind} failed: {error}",
                          next_attempt_at=iso(next_at))  # fmt: skip
        self.report.failures += 1
        self.report.counts["failed"] += 1
        self._log_action(event, "failed", action=plan.kind, error=error,
                         next_attempt_at=iso(next_at), level="warning")  # fmt: skip

    def _attention(self, event: Event, plan: Plan, reason: str) -> None:
        now = self.clock.now()
        with self.store.unit_of_work():
            self.store.ledger.update(
                event.key,
                now,
                state="needs_attention",
                reason=reason,
                next_attempt_at=None,
            )
            self.timeline(event, "attention", reason)
        self.report.counts["needs_attention"] += 1
        self._note_attention(event.key)
        self._log_action(event, "needs_attention", action=plan.kind, reason=reason,
                         level="warning")  # fmt: skip

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
