"""The action ledger: one row per decision about one event, keyed by a deterministic
idempotency key (e.g. ``refund:<shop id>:<tiktok cancel id>``).

A row is written as ``pending`` *before* any remote write; the engine then marks it ``done``
(with the remote id), ``failed`` (retryable, with ``next_attempt_at``), ``needs_attention`` or
``skipped``. A ``pending`` row found at the start of a later attempt means the outcome of an
earlier write is unknown: the engine reconciles against remote state before writing again.

``reason`` is the text a person reads; ``reason_code`` the same why as data (the rules'
``Code``, e.g. ``not_imported``), counted by ``reason_code_counts`` without parsing text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any, Final, Literal

from sqlite_utils import Database

from cancelsync.store.db import iso

STATES = ("pending", "done", "skipped", "failed", "needs_attention")
# States the engine never acts on again (``sync.engine.FINAL_STATES``, which the store
# layer may not import; a test keeps the two equal).
FINAL_STATES = ("done", "skipped", "needs_attention")
# The reason_code of a needs-attention row a person closed by hand (``Ledger.resolve``).
RESOLVED_CODE = "resolved_by_hand"

_COLUMNS = (
    "action_id", "idempotency_key", "scope", "store_name", "direction", "action", "state",
    "tiktok_order_id", "tiktok_cancel_id", "magento_entity_id", "magento_increment_id",
    "magento_creditmemo_id", "reason", "attempts", "next_attempt_at", "last_error",
    "remote_id", "payload", "reported_run", "created_at", "updated_at", "reason_code",
)  # fmt: skip
# Columns ``begin`` takes besides the required ones.
_BEGIN_EXTRAS = frozenset({
    "tiktok_order_id", "tiktok_cancel_id", "magento_entity_id", "magento_increment_id",
    "magento_creditmemo_id", "reason", "reason_code",
})  # fmt: skip


class _Unset(Enum):
    UNSET = "unset"


# ``update``'s "leave this column as it is" (``None`` stores NULL).
UNSET: Final = _Unset.UNSET
Keep = Literal[_Unset.UNSET]


@dataclass(frozen=True)
class LedgerEntry:
    action_id: int
    idempotency_key: str
    scope: str
    store_name: str
    direction: str
    action: str
    state: str
    tiktok_order_id: str | None
    tiktok_cancel_id: str | None
    magento_entity_id: int | None
    magento_increment_id: str | None
    magento_creditmemo_id: int | None
    reason: str | None
    attempts: int
    next_attempt_at: str | None
    last_error: str | None
    remote_id: str | None
    payload: str | None
    reported_run: str | None
    created_at: str
    updated_at: str
    reason_code: str | None = None

    def payload_dict(self) -> dict[str, Any]:
        return json.loads(self.payload) if self.payload else {}


class Ledger:
    def __init__(self, db: Database) -> None:
        self._db = db

    def _select(
        self, where: str, args: list[Any], order: str = "action_id"
    ) -> list[LedgerEntry]:
        sql = f"SELECT {', '.join(_COLUMNS)} FROM ledger WHERE {where} ORDER BY {order}"  # noqa: S608 - column names from fixed lists
        return [LedgerEntry(**row) for row in self._db.query(sql, args)]

    def get(self, idempotency_key: str) -> LedgerEntry | None:
        rows = self._select("idempotency_key = ?", [idempotency_key])
        return rows[0] if rows else None

    def get_by_id(self, action_id: int) -> LedgerEntry | None:
        rows = self._select("action_id = ?", [action_id])
        return rows[0] if rows else None

    def begin(
        self,
        idempotency_key: str,
        *,
        scope: str,
        store_name: str,
        direction: str,
        action: str,
        now: datetime,
        state: str = "pending",
        payload: dict[str, Any] | None = None,
        **ids: Any,
    ) -> LedgerEntry:
        """Insert the row if the key is new (``INSERT OR IGNORE``) and return what is stored.

        ``ids`` may hold tiktok_order_id, tiktok_cancel_id, magento_entity_id,
        magento_increment_id, magento_creditmemo_id, reason and reason_code.
        """
        if state not in STATES:
            raise ValueError(f"unknown ledger state {state!r}")
        unknown = set(ids) - _BEGIN_EXTRAS
        if unknown:
            raise TypeError(f"unknown ledger fields: {sorted(unknown)}")
        row: dict[str, Any] = {
            "idempotency_key": idempotency_key, "scope": scope, "store_name": store_name,
            "direction": direction, "action": action, "state": state,
            "payload": json.dumps(payload, sort_keys=True) if payload is not None else None,
            "created_at": iso(now), "updated_at": iso(now), **ids,
        }  # fmt: skip
        cols = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        self._db.execute(
            f"INSERT OR IGNORE INTO ledger ({cols}) VALUES ({marks})",  # noqa: S608 - column names from fixed lists
            list(row.values()),
        )
        entry = self.get(idempotency_key)
        assert entry is not None  # noqa: S101 - just inserted or already there
        return entry

    def update(
        self,
        idempotency_key: str,
        now: datetime,
        *,
        state: str | Keep = UNSET,
        action: str | Keep = UNSET,
        reason: str | Keep | None = UNSET,
        reason_code: str | Keep | None = UNSET,
        attempts: int | Keep = UNSET,
        next_attempt_at: datetime | Keep | None = UNSET,
        last_error: str | Keep | None = UNSET,
        remote_id: str | Keep | None = UNSET,
        payload: dict[str, Any] | Keep | None = UNSET,
        reported_run: str | Keep | None = UNSET,
        magento_creditmemo_id: int | Keep | None = UNSET,
    ) -> LedgerEntry:
        """Change the given columns of an existing row and stamp ``updated_at``.

        A column left at ``UNSET`` keeps its value; ``None`` stores NULL. Datetimes are
        stored as ``iso`` text, ``payload`` as JSON.

        Raises:
            ValueError: ``state`` is not one of ``STATES``.
            KeyError: no row has this key.
        """
        if state is not UNSET and state not in STATES:
            raise ValueError(f"unknown ledger state {state!r}")
        changes: dict[str, Any] = {
            "state": state, "action": action, "reason": reason,
            "reason_code": reason_code, "attempts": attempts, "last_error": last_error,
            "remote_id": remote_id, "reported_run": reported_run,
            "magento_creditmemo_id": magento_creditmemo_id,
            # Text, never a datetime: sqlite3 would store "YYYY-MM-DD HH:MM:SS+00:00",
            # which sorts before ISO text and would make a row due at once.
            "next_attempt_at": (
                iso(next_attempt_at)
                if isinstance(next_attempt_at, datetime) else next_attempt_at
            ),
            "payload": (
                json.dumps(payload, sort_keys=True) if isinstance(payload, dict) else payload
            ),
        }  # fmt: skip
        changes = {k: v for k, v in changes.items() if v is not UNSET}
        changes["updated_at"] = iso(now)
        sets = ", ".join(f"{k} = ?" for k in changes)
        self._db.execute(
            f"UPDATE ledger SET {sets} WHERE idempotency_key = ?",  # noqa: S608 - column names from fixed lists
            [*changes.values(), idempotency_key],
        )
        entry = self.get(idempotency_key)
        if entry is None:
            raise KeyError(idempotency_key)
        return entry

    def due(self, scope: str, now: datetime) -> list[LedgerEntry]:
        """Open rows (pending or failed) whose next attempt time has come."""
        return self._select(
            "scope = ? AND state IN ('pending', 'failed') "
            "AND (next_attempt_at IS NULL OR next_attempt_at <= ?)",
            [scope, iso(now)],
        )

    def waiting_for_import(self, scope: str, since: datetime) -> list[LedgerEntry]:
        """Rows skipped because no Magento order carried the TikTok order id yet
        (reason code ``not_imported``), recorded at or after ``since``."""
        return self._select(
            "scope = ? AND state = 'skipped' AND reason_code = 'not_imported' "
            "AND created_at >= ?",
            [scope, iso(since)],
        )

    def has_keys(self, prefix: str) -> bool:
        """Whether any row's idempotency key starts with ``prefix`` (a range of the
        unique key index: one probe, however large the ledger)."""
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        rows = self._db.query(
            "SELECT 1 FROM ledger WHERE idempotency_key >= ? AND idempotency_key < ? "
            "LIMIT 1",
            [prefix, end],
        )
        return any(True for _ in rows)

    def never_imported(self, scope: str) -> int:
        """TikTok cancellations skipped because no Magento order carried the TikTok
        order id (a buyer request's hold waiting for the import is not one)."""
        rows = self._db.query(
            "SELECT COUNT(*) AS n FROM ledger WHERE scope = ? AND state = 'skipped' "
            "AND reason_code = 'not_imported' AND action != 'magento_hold'",
            [scope],
        )
        return int(next(iter(rows))["n"])

    def reopen(
        self,
        idempotency_key: str,
        now: datetime,
        *,
        magento_entity_id: int | None = None,
        magento_increment_id: str | None = None,
    ) -> None:
        """Make a skipped row open again (``pending``, nothing attempted) so its event is
        decided afresh, with the Magento order found since (when one was); the engine
        re-reads the remote side before any write."""
        self._db.execute(
            "UPDATE ledger SET state = 'pending', attempts = 0, next_attempt_at = NULL, "
            "reported_run = NULL, reason_code = NULL, updated_at = ?, "
            "magento_entity_id = COALESCE(?, magento_entity_id), "
            "magento_increment_id = COALESCE(?, magento_increment_id) "
            "WHERE idempotency_key = ? AND state = 'skipped'",
            [iso(now), magento_entity_id, magento_increment_id, idempotency_key],
        )

    def counts(self, scope: str) -> dict[str, int]:
        counts = dict.fromkeys(STATES, 0)
        for row in self._db.query(
            "SELECT state, COUNT(*) AS n FROM ledger WHERE scope = ? GROUP BY state",
            [scope],
        ):
            counts[row["state"]] = row["n"]
        return counts

    def counts_by_direction(self, scope: str) -> dict[tuple[str, str], int]:
        """How many rows of a scope are in each state, per direction:
        ``{(direction, state): n}``, only pairs that have rows."""
        return {
            (row["direction"], row["state"]): row["n"]
            for row in self._db.query(
                "SELECT direction, state, COUNT(*) AS n FROM ledger WHERE scope = ? "
                "GROUP BY direction, state",
                [scope],
            )
        }

    def reason_code_counts(
        self, scope: str, state: str | None = None
    ) -> dict[str, int]:
        """How many rows of a scope (in one state, or any) carry each ``reason_code``.

        Rows without a code are not counted.
        """
        where, args = "scope = ? AND reason_code IS NOT NULL", [scope]
        if state is not None:
            where += " AND state = ?"
            args.append(state)
        return {
            row["reason_code"]: row["n"]
            for row in self._db.query(
                f"SELECT reason_code, COUNT(*) AS n FROM ledger WHERE {where} "  # noqa: S608 - fixed conditions
                "GROUP BY reason_code ORDER BY reason_code",
                args,
            )
        }

    def in_state(self, scope: str, state: str) -> list[LedgerEntry]:
        return self._select("scope = ? AND state = ?", [scope, state])

    def holds_on(self, scope: str) -> list[LedgerEntry]:
        """The Magento orders cancelsync holds now (``hold_on_request``), oldest first:
        ``hold:<shop>:<cancel id>`` rows that are ``done`` (not closed by hand) whose
        ``release:<shop>:<cancel id>`` row is absent or not final yet."""
        # The unary + keeps SQLite off the (scope, state) index: done rows are most of a
        # ledger, hold rows few, so the key range of the unique index reads far less.
        final = ", ".join("?" for _ in FINAL_STATES)
        released = (
            "SELECT 1 FROM ledger AS r WHERE r.idempotency_key = 'release:' || "  # noqa: S608 - placeholders only, values bound
            f"substr(ledger.idempotency_key, 6) AND r.state IN ({final})"
        )
        return self._select(
            "idempotency_key >= 'hold:' AND idempotency_key < 'hold;' "
            "AND +scope = ? AND +state = 'done' "
            f"AND (reason_code IS NULL OR reason_code != ?) AND NOT EXISTS ({released})",
            [scope, RESOLVED_CODE, *FINAL_STATES],
            order="updated_at, action_id",
        )

    def for_order(self, order_ref: str) -> list[LedgerEntry]:
        """Rows about a TikTok order id or a Magento increment id."""
        return self._select(
            "tiktok_order_id = ? OR magento_increment_id = ?", [order_ref, order_ref]
        )

    def for_tiktok_order(self, tiktok_order_id: str) -> list[LedgerEntry]:
        return self._select("tiktok_order_id = ?", [tiktok_order_id])

    def find_by_creditmemo(self, magento_creditmemo_id: int) -> LedgerEntry | None:
        """The row whose action *created* this credit memo (our own refunds)."""
        rows = self._select(
            "magento_creditmemo_id = ? AND action = 'magento_refund'",
            [magento_creditmemo_id],
        )
        return rows[0] if rows else None

    def for_magento_order(self, magento_entity_id: int) -> list[LedgerEntry]:
        return self._select("magento_entity_id = ?", [magento_entity_id])

    def open_action_ids(self) -> list[int]:
        """Ids of every failed / needs-attention row (what ``retry --all`` re-queues)."""
        return [
            int(r["action_id"])
            for r in self._db.query(
                "SELECT action_id FROM ledger "
                "WHERE state IN ('failed', 'needs_attention') ORDER BY action_id"
            )
        ]

    def requeue(self, now: datetime, action_id: int | None = None) -> int:
        """Put failed / needs-attention rows (one, or all) back in the queue.

        A row held for a write that may still complete (``hold_until``) keeps its hold:
        a person's `retry` must not re-send a slow refund before it has settled (the
        soak caught exactly that: a second partial refund).
        """
        where = "state IN ('failed', 'needs_attention')"
        held = "json_extract(payload, '$.settle_until')"
        args: list[Any] = [iso(now), iso(now)]
        if action_id is not None:
            where += " AND action_id = ?"
            args.append(action_id)
        cur = self._db.execute(
            "UPDATE ledger SET state = 'pending', attempts = 0, "  # noqa: S608 - column names from fixed lists
            f"next_attempt_at = CASE WHEN {held} > ? THEN {held} ELSE NULL END, "
            f"reported_run = NULL, updated_at = ? WHERE {where}",
            args,
        )
        return int(cur.rowcount)

    def hold_until(self, idempotency_key: str, until: datetime, now: datetime) -> None:
        """Remember that the row's last write may complete until ``until`` (a timeout,
        a dropped connection): ``requeue`` never schedules it sooner."""
        entry = self.get(idempotency_key)
        if entry is None:
            raise KeyError(idempotency_key)
        payload = {**entry.payload_dict(), "settle_until": iso(until)}
        self._db.execute(
            "UPDATE ledger SET payload = ?, updated_at = ? WHERE idempotency_key = ?",
            [json.dumps(payload, sort_keys=True), iso(now), idempotency_key],
        )

    def resolve(self, action_id: int, note: str, now: datetime) -> LedgerEntry | None:
        """Close a ``needs_attention`` row for good: the merchant handled it by hand.

        The row becomes ``done`` with reason_code ``RESOLVED_CODE`` and ``note`` as its
        reason, so the engine (which never acts on a ``done`` row again) and ``retry``
        (which re-queues only failed / needs-attention rows) leave it alone from now on.
        Checked and changed in one statement: a row the retry pass took meanwhile is not
        touched.

        Returns:
            The resolved row, or ``None`` when no open needs-attention row has this id.
        """
        return self.close_attention(action_id, note, RESOLVED_CODE, now)

    def close_attention(
        self, action_id: int, reason: str, reason_code: str, now: datetime
    ) -> LedgerEntry | None:
        """A ``needs_attention`` row becomes ``done`` with this reason and code (``None``
        when no open needs-attention row has this id)."""
        cur = self._db.execute(
            "UPDATE ledger SET state = 'done', reason_code = ?, reason = ?, "
            "next_attempt_at = NULL, updated_at = ? "
            "WHERE action_id = ? AND state = 'needs_attention'",
            [reason_code, reason, iso(now), action_id],
        )
        return self.get_by_id(action_id) if cur.rowcount else None

    def page(
        self,
        *,
        scopes: list[str] | None = None,
        states: list[str] | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[LedgerEntry], int]:
        """The most recently changed rows (of these scopes and states, when given),
        newest first, ``limit`` of them from ``offset``; and how many there are in all."""
        where, args = ["1 = 1"], []
        for column, values in (("scope", scopes), ("state", states)):
            if values is not None:
                where.append(f"{column} IN ({', '.join('?' for _ in values)})")
                args.extend(values)
        condition = " AND ".join(where)
        total = self._db.execute(
            f"SELECT COUNT(*) FROM ledger WHERE {condition}",  # noqa: S608 - fixed conditions, values bound
            args,
        ).fetchone()[0]
        rows = self._select(
            condition, [*args, limit, offset],
            order="updated_at DESC, action_id DESC LIMIT ? OFFSET ?",
        )  # fmt: skip
        return rows, int(total)
