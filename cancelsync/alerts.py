"""Alerts to ``worker.alert_webhook_url``: new needs-attention items, a store whose cycles
keep failing, and its recovery.

**What is alerted.** After each run (``Monitor.after_run``):

- every item a store's cycle *newly* reported as needing attention (the ledger row the
  run marked ``reported_run``, the same items that make ``run --once`` exit 1): store,
  direction, TikTok order id, Magento increment id, action id and reason, one line each,
  batched into one message per store and run (at most ``MAX_LINES`` lines a message);
- a store whose cycles failed ``FAILING_AFTER`` times in a row (the store-wide error:
  API unreachable, authorization lost), once, with the last error;
- its recovery, once, when a cycle completes again.

**Exactly what is remembered.** A message is queued in the database outbox
(``store.alerts``) under a key naming what it is about (``attention:<action id>:<run>``),
so a restart never alerts an item twice and never forgets one it has not sent; the
failing streak and whether it was alerted live in ``store.health``, so "failing" and
"recovered" survive restarts too. An item re-queued by ``retry`` that needs attention
again is reported by that later run: a new alert.

**Never blocking the sync.** Messages are sent after the run's cycles, in the same
thread, from the outbox: the worker's SQLite connection never meets another thread, and
what could not be sent waits for the next run. One delivery round spends at most about
the webhook's timeout (``ALERT_TIMEOUT_SECONDS``): a hook that does not answer (timeout,
connection refused) ends the round at once; an HTTP 429/5xx is retried with a short
backoff (the hook's ``Retry-After`` honoured, capped) while the round's budget lasts, so
a dead webhook adds at most one timeout per run, and a slow failing one at most about
two. A 4xx other than 429 drops the message (logged as an error: fix the URL).

**Secrets.** Every text passes through the log ``Redactor`` when queued and again when
sent, and the URL (it carries the hook's token) is added to that redactor and never
logged.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

import requests
import structlog

from cancelsync.clients.alert_webhook import WebhookClient
from cancelsync.clock import Clock
from cancelsync.config import WorkerConfig
from cancelsync.directions import Direction
from cancelsync.errors import ApiError, FatalApiError, RetryableApiError
from cancelsync.log import Redactor
from cancelsync.store import LedgerEntry, Notice, Store
from cancelsync.store.alerts import QueuedAlert, StoreHealthRow
from cancelsync.sync.engine import CycleReport

log = structlog.get_logger("cancelsync.alerts")

FAILING_AFTER = 3  # a store's cycles failing this many times in a row is alerted
ALERT_TIMEOUT_SECONDS = 5.0  # per request, and the budget of one delivery round
SEND_ATTEMPTS = 3  # per message and round, for answers that say "try again"
BACKOFF_SECONDS = 0.5  # doubles per attempt; a Retry-After is capped at the budget
MAX_LINES = 20  # attention items per message (chat hooks truncate long ones)
KEEP_SENT = timedelta(days=30)  # how long sent / dropped messages are kept


@dataclass(frozen=True)
class Message:
    """One POST: its text and the outbox rows it delivers."""

    alert_ids: tuple[int, ...]
    store_name: str
    kind: str
    text: str


class Alerter:
    """Queues alerts from finished runs and delivers them to the webhook.

    Args:
        webhook: the client for ``worker.alert_webhook_url``.
        redactor: the log redactor; every text is scrubbed through it.
        sleep, monotonic: injected so tests never wait.
    """

    def __init__(
        self,
        store: Store,
        webhook: WebhookClient,
        *,
        redactor: Redactor,
        clock: Clock,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.webhook = webhook
        self.redactor = redactor
        self.clock = clock
        self._sleep = sleep
        self._monotonic = monotonic

    @classmethod
    def from_config(
        cls,
        worker: WorkerConfig,
        store: Store,
        *,
        redactor: Redactor,
        clock: Clock,
        timeout: float = ALERT_TIMEOUT_SECONDS,
    ) -> Alerter | None:
        """The alerter of ``worker.alert_webhook_url``, or ``None`` when it is unset."""
        url = worker.alert_webhook_url
        if not url:
            return None
        parts = urlsplit(url)
        redactor.add(url, parts.path + (f"?{parts.query}" if parts.query else ""))
        webhook = WebhookClient(requests.Session(), url, timeout=timeout)
        return cls(store, webhook, redactor=redactor, clock=clock)

    def close(self) -> None:
        self.webhook.close()

    # ------------------------------------------------------------------ queueing

    def queue(
        self,
        reports: Sequence[CycleReport],
        before: dict[str, StoreHealthRow | None],
        after: dict[str, StoreHealthRow],
    ) -> int:
        """Queue the alerts of a finished run; how many were added.

        ``before``/``after``: each reported store's health before and after this run's
        cycle was counted (``store.health.note_cycle``).
        """
        now = self.clock.now()
        added = 0
        for report in reports:
            name = report.store_name
            with self.store.unit_of_work():
                for entry in self._new_attention(report):
                    added += self.store.alerts.enqueue(
                        f"attention:{entry.action_id}:{report.run_id}",
                        store_name=name, kind="attention",
                        text=self._scrub(attention_line(entry)), now=now,
                    )  # fmt: skip
                health = after[name]
                if (
                    report.error is not None
                    and health.failed_in_a_row >= FAILING_AFTER
                    and not health.failing_alerted
                ):
                    added += self.store.alerts.enqueue(
                        f"failing:{name}:{report.run_id}", store_name=name,
                        kind="failing", now=now,
                        text=self._scrub(failing_text(name, health)),
                    )  # fmt: skip
                    self.store.health.set_failing_alerted(name, True)
                elif report.error is None and health.failing_alerted:
                    previous = before.get(name)
                    failed = previous.failed_in_a_row if previous else 0
                    added += self.store.alerts.enqueue(
                        f"recovered:{name}:{report.run_id}", store_name=name,
                        kind="recovered", now=now,
                        text=self._scrub(recovered_text(name, failed)),
                    )  # fmt: skip
                    self.store.health.set_failing_alerted(name, False)
        return added

    def authorization(self, notice: Notice) -> bool:
        """Queue what TikTok said about a store's authorization (webhook type 6 or 7):
        one alert per store, type and day (type 7 comes daily for 30 days)."""
        day = notice.received_at[:10]
        with self.store.unit_of_work():
            return self.store.alerts.enqueue(
                f"authorization:{notice.store_name}:{notice.kind}:{day}",
                store_name=notice.store_name, kind="authorization",
                text=self._scrub(f"cancelsync [{notice.store_name}]: {notice.message}"),
                now=self.clock.now(),
            )  # fmt: skip

    def _new_attention(self, report: CycleReport) -> list[LedgerEntry]:
        """The items this report's run was the first to report as needing attention."""
        if report.new_attention == 0:
            return []
        return [
            entry
            for entry in self.store.ledger.in_state(report.scope, "needs_attention")
            if entry.reported_run == report.run_id
        ]

    def _scrub(self, text: str) -> str:
        return self.redactor.scrub_text(text)

    # ------------------------------------------------------------------ delivery

    def flush(self) -> int:
        """One delivery round over the outbox, within the webhook's timeout as a budget;
        how many messages were delivered. Never raises for the webhook's trouble."""
        messages = compose(self.store.alerts.pending())
        try:
            delivered = self._send_round(messages)
        finally:
            self.webhook.close()  # no idle connection kept between runs
        self.store.alerts.prune(self.clock.now() - KEEP_SENT)
        return delivered

    def _send_round(self, messages: Sequence[Message]) -> int:
        deadline = self._monotonic() + self.webhook.timeout
        delivered = 0
        for index, message in enumerate(messages):
            if index and self._monotonic() >= deadline:
                break  # the budget is spent: the rest waits for the next run
            error, final = self._deliver(message, deadline)
            now = self.clock.now()
            if error is None:
                self.store.alerts.mark_sent(message.alert_ids, now)
                delivered += 1
                log.info("alert.sent", store=message.store_name, kind=message.kind,
                         items=len(message.alert_ids))  # fmt: skip
                continue
            if final:
                self.store.alerts.mark_dropped(message.alert_ids, error, now)
                log.error("alert.dropped", store=message.store_name,
                          kind=message.kind, error=error)  # fmt: skip
                continue
            self.store.alerts.mark_failed(message.alert_ids, error, now)
            log.warning("alert.delivery_failed", store=message.store_name,
                        kind=message.kind, error=error,
                        waiting=len(messages) - index)  # fmt: skip
            break  # the hook is down or slow: try again after the next run
        return delivered

    def _deliver(self, message: Message, deadline: float) -> tuple[str | None, bool]:
        """``(error, final)``: ``(None, _)`` delivered; ``final`` the hook refused it
        for good. Retries "try again" answers while the round's budget allows. The error
        is the message alone: the transport's hints are about the shop APIs' settings."""
        text = self._scrub(message.text)
        for attempt in range(1, SEND_ATTEMPTS + 1):
            try:
                self.webhook.post(text)
            except FatalApiError as exc:
                return self._scrub(exc.message), True
            except RetryableApiError as exc:
                if exc.status is None:  # no answer at all: not again in this round
                    return self._scrub(exc.message), False
                wait = BACKOFF_SECONDS * 2 ** (attempt - 1)
                if exc.retry_after is not None:
                    wait = exc.retry_after
                if attempt == SEND_ATTEMPTS or self._monotonic() + wait >= deadline:
                    return self._scrub(exc.message), False
                log.info("alert.retry", store=message.store_name, attempt=attempt,
                         sleep_seconds=wait, status=exc.status)  # fmt: skip
                self._sleep(wait)
            except ApiError as exc:
                return self._scrub(exc.message), False
            else:
                return None, False
        raise AssertionError(
            "unreachable"
        )  # pragma: no cover - the last attempt returns


# --------------------------------------------------------------------------- texts


def compose(queued: Sequence[QueuedAlert]) -> list[Message]:
    """The messages for what is queued, in queue order: a store's attention lines
    together (``MAX_LINES`` a message), every other alert on its own."""
    messages: list[Message] = []
    lines: dict[str, list[QueuedAlert]] = {}
    for alert in queued:
        if alert.kind == "attention":
            lines.setdefault(alert.store_name, []).append(alert)
            continue
        messages.append(
            Message((alert.alert_id,), alert.store_name, alert.kind, alert.text)
        )
    for store_name, items in lines.items():
        for start in range(0, len(items), MAX_LINES):
            chunk = items[start : start + MAX_LINES]
            text = attention_text(store_name, [a.text for a in chunk])
            ids = tuple(a.alert_id for a in chunk)
            messages.append(Message(ids, store_name, "attention", text))
    return sorted(messages, key=lambda m: min(m.alert_ids))


def attention_line(entry: LedgerEntry) -> str:
    """One item: direction, both order ids, the action id and the reason."""
    try:
        direction = Direction(entry.direction).label
    except ValueError:
        direction = entry.direction
    return (
        f"• {direction}: TikTok order {entry.tiktok_order_id or '-'}, Magento "
        f"#{entry.magento_increment_id or '-'} (action {entry.action_id}) — "
        f"{entry.reason or 'no reason recorded'}"
    )


def attention_text(store_name: str, lines: Sequence[str]) -> str:
    what = "1 new item needs" if len(lines) == 1 else f"{len(lines)} new items need"
    return "\n".join([
        f"cancelsync [{store_name}]: {what} attention",
        *lines,
        "`cancelsync explain ORDER_ID` shows the timeline; once the cause is fixed, "
        "`cancelsync retry ACTION_ID`.",
    ])  # fmt: skip


def failing_text(store_name: str, health: StoreHealthRow) -> str:
    return (
        f"cancelsync [{store_name}]: not syncing — {health.failed_in_a_row} cycles in a "
        f"row failed. Last error: {health.last_error}\nEvents wait until it is fixed "
        "(nothing is skipped); `cancelsync check` names the fix."
    )


def recovered_text(store_name: str, failed: int) -> str:
    after = f" after {failed} failed ones" if failed else ""
    return f"cancelsync [{store_name}]: recovered — a cycle completed again{after}."
