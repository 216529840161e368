"""Per-scope high-water marks that only move forward.

A cursor is ``(position, tie)``: the largest TikTok ``update_time`` (Unix seconds) or Magento
credit memo ``entity_id`` whose page has been fully processed, plus a tie-breaker id. The
engine re-reads ``overlap_seconds`` behind it every cycle; the ledger dedupes what it sees twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlite_utils import Database

from cancelsync.store.db import iso


class CursorRegressionError(ValueError):
    """Raised when asked to move a cursor backwards (a bug, never silently accepted)."""


def _order(position: int, tie: str) -> tuple[int, int, int, str]:
    """Sort key of a cursor value: ties that are numeric ids compare as numbers.

    TikTok order ids and Magento entity ids are decimal strings of varying length, and as
    text "10" < "9", which would make a forward move look like a regression. No tie sorts
    first, then numeric ties, then any other text.
    """
    if not tie:
        return (position, 0, 0, "")
    if tie.isascii() and tie.isdigit():
        return (position, 1, int(tie), "")
    return (position, 2, 0, tie)


@dataclass(frozen=True)
class Cursor:
    scope: str
    stream: str
    position: int
    tie: str = ""


class Cursors:
    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, scope: str, stream: str) -> Cursor | None:
        rows = list(
            self._db.query(
                "SELECT position, tie FROM cursors WHERE scope = ? AND stream = ?",
                [scope, stream],
            )
        )
        if not rows:
            return None
        return Cursor(scope, stream, int(rows[0]["position"]), rows[0]["tie"])

    def advance(
        self, scope: str, stream: str, position: int, now: datetime, tie: str = ""
    ) -> Cursor:
        """Move the cursor to ``(position, tie)``; equal is a no-op, backwards raises."""
        current = self.get(scope, stream)
        if current is not None:
            if _order(position, tie) < _order(current.position, current.tie):
                raise CursorRegressionError(
                    f"cursor {scope}/{stream} would move back from "
                    f"{current.position}/{current.tie!r} to {position}/{tie!r}"
                )
            if (position, tie) == (current.position, current.tie):
                return current
        self._db.execute(
            """INSERT INTO cursors (scope, stream, position, tie, updated_at)
               VALUES (?, ?, ?, ?, ?)
               ON CONFLICT (scope, stream) DO UPDATE SET
                 position = excluded.position, tie = excluded.tie,
                 updated_at = excluded.updated_at""",
            [scope, stream, position, tie, iso(now)],
        )
        return Cursor(scope, stream, position, tie)

    def all(self, scope: str) -> list[Cursor]:
        return [
            Cursor(scope, r["stream"], int(r["position"]), r["tie"])
            for r in self._db.query(
                "SELECT stream, position, tie FROM cursors WHERE scope = ? ORDER BY stream",
                [scope],
            )
        ]
