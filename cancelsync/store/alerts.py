"""Alert state: the webhook outbox and each store's run of failed cycles.

**The outbox** (``alert_outbox``) holds every alert message that was decided, keyed by what
it is about (``attention:<action id>:<run>``, ``failing:<store>:<run>``, ...), so one item
is never queued twice, a restart neither re-alerts what was sent nor loses what was not,
and a webhook that is down only delays messages. Rows end ``sent`` or ``dropped`` (the
webhook rejected them for good); old ones are pruned.

**Store health** (``store_health``) counts a store's cycles that failed in a row, remembers
whether that was alerted (so "failing" and "recovered" are each said once, across
restarts) and when a cycle last completed (for ``/healthz`` after a restart).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlite_utils import Database

from cancelsync.store.db import iso

ALERT_KINDS = ("attention", "failing", "recovered", "authorization")


@dataclass(frozen=True)
class QueuedAlert:
    """One message (or, for ``attention``, one line of a message) waiting to be sent."""

    alert_id: int
    alert_key: str
    store_name: str
    kind: str
    text: str
    attempts: int


class AlertOutbox:
    def __init__(self, db: Database) -> None:
        self._db = db

    def enqueue(
        self, alert_key: str, *, store_name: str, kind: str, text: str, now: datetime
    ) -> bool:
        """Queue a message unless one with this key was ever queued; True when added."""
        if kind not in ALERT_KINDS:
            raise ValueError(f"unknown alert kind {kind!r}")
        cur = self._db.execute(
            """INSERT OR IGNORE INTO alert_outbox
                 (alert_key, store_name, kind, text, state, created_at, updated_at)
               VALUES (?, ?, ?, ?, 'pending', ?, ?)""",
            [alert_key, store_name, kind, text, iso(now), iso(now)],
        )
        return bool(cur.rowcount)

    def pending(self) -> list[QueuedAlert]:
        """Messages not sent yet, oldest first."""
        rows = self._db.query(
            """SELECT alert_id, alert_key, store_name, kind, text, attempts
               FROM alert_outbox WHERE state = 'pending' ORDER BY alert_id"""
        )
        return [QueuedAlert(**row) for row in rows]

    def mark_sent(self, alert_ids: Sequence[int], now: datetime) -> None:
        self._mark(alert_ids, now, state="sent", error=None)

    def mark_failed(self, alert_ids: Sequence[int], error: str, now: datetime) -> None:
        """One more failed delivery; the messages stay pending for the next round."""
        self._mark(alert_ids, now, state="pending", error=error)

    def mark_dropped(self, alert_ids: Sequence[int], error: str, now: datetime) -> None:
        """The webhook refused them for good (e.g. HTTP 400): never sent again."""
        self._mark(alert_ids, now, state="dropped", error=error)

    def _mark(
        self, alert_ids: Sequence[int], now: datetime, *, state: str, error: str | None
    ) -> None:
        for alert_id in alert_ids:
            self._db.execute(
                """UPDATE alert_outbox SET state = ?, last_error = ?, updated_at = ?,
                     attempts = attempts + 1 WHERE alert_id = ?""",
                [state, error, iso(now), alert_id],
            )

    def prune(self, before: datetime) -> int:
        """Forget sent and dropped messages last touched before ``before``.

        Safe: an attention item's key names the run that first reported it, and no
        later run reports it under that run again.
        """
        cur = self._db.execute(
            "DELETE FROM alert_outbox WHERE state != 'pending' AND updated_at < ?",
            [iso(before)],
        )
        return int(cur.rowcount)

    def counts(self) -> dict[str, int]:
        """Messages by state (pending, sent, dropped)."""
        counts = dict.fromkeys(("pending", "sent", "dropped"), 0)
        for row in self._db.query(
            "SELECT state, COUNT(*) AS n FROM alert_outbox GROUP BY state"
        ):
            counts[row["state"]] = row["n"]
        return counts


@dataclass(frozen=True)
class StoreHealthRow:
    """A store's cycles as the alerts and ``/healthz`` see them."""

    store_name: str
    failed_in_a_row: int = 0
    last_error: str | None = None
    failing_alerted: bool = False
    last_ok_at: str | None = None  # when a cycle last completed (iso)


class StoreHealth:
    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, store_name: str) -> StoreHealthRow | None:
        rows = list(
            self._db.query(
                """SELECT store_name, failed_in_a_row, last_error, failing_alerted,
                     last_ok_at FROM store_health WHERE store_name = ?""",
                [store_name],
            )
        )
        if not rows:
            return None
        row = dict(rows[0])
        row["failing_alerted"] = bool(row["failing_alerted"])
        return StoreHealthRow(**row)

    def note_cycle(
        self, store_name: str, *, error: str | None, finished_at: datetime
    ) -> StoreHealthRow:
        """Count a finished cycle: an ``error`` adds one to the run of failures, a
        completed cycle (``None``) ends it. The alerted flag is left as it is."""
        if error is None:
            self._db.execute(
                """INSERT INTO store_health (store_name, failed_in_a_row, last_error,
                     last_ok_at, updated_at) VALUES (?, 0, NULL, ?, ?)
                   ON CONFLICT (store_name) DO UPDATE SET failed_in_a_row = 0,
                     last_error = NULL, last_ok_at = excluded.last_ok_at,
                     updated_at = excluded.updated_at""",
                [store_name, iso(finished_at), iso(finished_at)],
            )
        else:
            self._db.execute(
                """INSERT INTO store_health (store_name, failed_in_a_row, last_error,
                     updated_at) VALUES (?, 1, ?, ?)
                   ON CONFLICT (store_name) DO UPDATE SET
                     failed_in_a_row = failed_in_a_row + 1,
                     last_error = excluded.last_error, updated_at = excluded.updated_at""",
                [store_name, error, iso(finished_at)],
            )
        row = self.get(store_name)
        assert row is not None  # noqa: S101 - just written
        return row

    def set_failing_alerted(self, store_name: str, alerted: bool) -> None:
        self._db.execute(
            "UPDATE store_health SET failing_alerted = ? WHERE store_name = ?",
            [int(alerted), store_name],
        )
