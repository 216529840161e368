"""When each sync direction of a scope was switched off, and when it ran fresh again.

A direction switched back on must start ``first_run_lookback_hours`` back, not resume a
cursor that went stale while it was off. Only changes are appended (a direction left off is
noted every cycle, but stored once), so the last row of a direction tells its state: "off"
means its next run starts fresh.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlite_utils import Database

from cancelsync.store.db import iso


@dataclass(frozen=True)
class DirectionSwitch:
    """One change: ``enabled`` False when first seen off, True after a fresh run."""

    scope: str
    direction: str
    enabled: bool
    at: str


class DirectionSwitches:
    def __init__(self, db: Database) -> None:
        self._db = db

    def last(self, scope: str, direction: str) -> DirectionSwitch | None:
        """The latest change of this direction, or ``None`` if it was never noted."""
        rows = self._select(
            "scope = ? AND direction = ?", [scope, direction], last=True
        )
        return rows[0] if rows else None

    def note(self, scope: str, direction: str, *, enabled: bool, now: datetime) -> bool:
        """Record the state if it differs from the last one; True when a row was added."""
        cur = self._db.execute(
            """INSERT INTO direction_switches (scope, direction, enabled, at)
               SELECT ?, ?, ?, ?
               WHERE (SELECT enabled FROM direction_switches
                      WHERE scope = ? AND direction = ?
                      ORDER BY switch_id DESC LIMIT 1) IS NOT ?""",
            [scope, direction, int(enabled), iso(now), scope, direction, int(enabled)],
        )
        return bool(cur.rowcount)

    def history(self, scope: str) -> list[DirectionSwitch]:
        """Every change of every direction of a scope, oldest first."""
        return self._select("scope = ?", [scope])

    def _select(
        self, where: str, args: list[object], *, last: bool = False
    ) -> list[DirectionSwitch]:
        order = "switch_id DESC LIMIT 1" if last else "switch_id"
        rows = self._db.query(
            "SELECT scope, direction, enabled, at FROM direction_switches "  # noqa: S608 - fixed conditions
            f"WHERE {where} ORDER BY {order}",
            args,
        )
        return [
            DirectionSwitch(r["scope"], r["direction"], bool(r["enabled"]), r["at"])
            for r in rows
        ]
