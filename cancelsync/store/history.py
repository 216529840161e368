"""Cycle history (for ``status``) and the per-order timeline (for ``explain``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from cancelsync.store.db import iso


@dataclass(frozen=True)
class CycleRecord:
    cycle_id: int
    run_id: str
    scope: str
    store_name: str
    started_at: str
    finished_at: str | None
    outcome: str
    counts: dict[str, int]
    error: str | None


class Cycles:
    def __init__(self, db: Database) -> None:
        self._db = db

    def record(
        self,
        *,
        run_id: str,
        scope: str,
        store_name: str,
        started_at: datetime,
        finished_at: datetime,
        outcome: str,
        counts: dict[str, int],
        error: str | None = None,
    ) -> None:
        self._db.execute(
            """INSERT INTO cycles (run_id, scope, store_name, started_at, finished_at,
                 outcome, counts, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
            [
                run_id,
                scope,
                store_name,
                iso(started_at),
                iso(finished_at),
                outcome,
                json.dumps(counts, sort_keys=True),
                error,
            ],
        )

    def last(self, scope: str) -> CycleRecord | None:
        rows = list(
            self._db.query(
                "SELECT * FROM cycles WHERE scope = ? ORDER BY cycle_id DESC LIMIT 1",
                [scope],
            )
        )
        if not rows:
            return None
        r = dict(rows[0])
        r["counts"] = json.loads(r["counts"] or "{}")
        return CycleRecord(**r)


@dataclass(frozen=True)
class TimelineEvent:
    at: str
    kind: str
    message: str
    action_id: int | None
    details: dict[str, Any]


class Timeline:
    def __init__(self, db: Database) -> None:
        self._db = db

    def add(
        self,
        *,
        at: datetime,
        scope: str,
        kind: str,
        message: str,
        run_id: str | None = None,
        action_id: int | None = None,
        tiktok_order_id: str | None = None,
        magento_entity_id: int | None = None,
        magento_increment_id: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        self._db.execute(
            """INSERT INTO timeline (at, scope, run_id, action_id, tiktok_order_id,
                 magento_entity_id, magento_increment_id, kind, message, details)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            [
                iso(at),
                scope,
                run_id,
                action_id,
                tiktok_order_id,
                magento_entity_id,
                magento_increment_id,
                kind,
                message,
                json.dumps(details, sort_keys=True, default=_plain)
                if details
                else None,
            ],
        )

    def for_order(
        self, tiktok_order_id: str | None, magento_entity_id: int | None, order_ref: str
    ) -> list[TimelineEvent]:
        rows = self._db.query(
            """SELECT at, kind, message, action_id, details FROM timeline
               WHERE tiktok_order_id = ? OR magento_increment_id = ?
                  OR (magento_entity_id IS NOT NULL AND magento_entity_id = ?)
               ORDER BY event_id""",
            [tiktok_order_id or order_ref, order_ref, magento_entity_id],
        )
        return [
            TimelineEvent(
                at=r["at"],
                kind=r["kind"],
                message=r["message"],
                action_id=r["action_id"],
                details=json.loads(r["details"]) if r["details"] else {},
            )
            for r in rows
        ]


def _plain(value: object) -> str:
    """JSON for detail values: datetimes stored like every other timestamp, else text."""
    return iso(value) if isinstance(value, datetime) else str(value)
