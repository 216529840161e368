"""The one owner of SQLite. Everything stored goes through ``Store``.

``Store.open(path)`` creates the file (mode 0600), turns on WAL and a busy timeout, and applies
the migrations. Each write commits alone unless it runs inside ``unit_of_work()``, which
commits everything inside together (nested units become savepoints).

**What commits when.** A page is *not* one transaction. Each event is committed alone: its
ledger row (with its timeline entry) in one unit, as ``pending`` *before* its remote write and
again with the outcome after it. The page's cursor moves in a unit of its own, only after every
event of the page has been recorded. That order is safe:

- a crash after a write and before its outcome is recorded leaves the ``pending`` row that
  was committed before the write; the next attempt re-reads the remote side before sending;
- the cursor never gets ahead of effects that are not recorded, and each cycle re-reads an
  overlap behind it anyway;
- a crash between the events' commits and the cursor's re-reads those events next cycle, and
  their ledger rows (keyed by a deterministic idempotency key) make them no-ops.

A page in one transaction would instead lose the ``pending`` rows of writes already sent when
it rolled back, which is exactly what must survive a crash.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from sqlite_utils import Database

from cancelsync.store.alerts import AlertOutbox, StoreHealth
from cancelsync.store.cursors import Cursor, CursorRegressionError, Cursors
from cancelsync.store.db import open_database
from cancelsync.store.history import Cycles, Timeline
from cancelsync.store.housekeeping import Pruned, backup_database, prune_history
from cancelsync.store.ledger import UNSET, Ledger, LedgerEntry
from cancelsync.store.links import Link, LinkConflictError, Links
from cancelsync.store.notices import Notice, Notices
from cancelsync.store.shops import ShopBinding, Shops
from cancelsync.store.switches import DirectionSwitch, DirectionSwitches
from cancelsync.store.tokens import TokenPair, Tokens, seed_fingerprint

__all__ = [
    "UNSET", "Cursor", "CursorRegressionError", "DirectionSwitch", "LedgerEntry", "Link",
    "LinkConflictError", "Notice", "Pruned", "ShopBinding", "Store", "TokenPair",
    "seed_fingerprint",
]  # fmt: skip


class Store:
    """Facade over the tables: ``store.cursors``, ``store.links``, ``store.ledger``, ..."""

    def __init__(self, db: Database, path: Path | None = None) -> None:
        self.db = db
        self.path = path
        self.cursors = Cursors(db)
        self.links = Links(db)
        self.ledger = Ledger(db)
        self.tokens = Tokens(db)
        self.shops = Shops(db)
        self.notices = Notices(db)
        self.cycles = Cycles(db)
        self.timeline = Timeline(db)
        self.switches = DirectionSwitches(db)
        self.alerts = AlertOutbox(db)
        self.health = StoreHealth(db)

    @classmethod
    def open(cls, path: Path | str) -> Store:
        return cls(open_database(path), Path(path))

    @classmethod
    def memory(cls) -> Store:
        return cls(open_database(None))

    @contextmanager
    def unit_of_work(self) -> Iterator[Store]:
        """Commit everything inside together, or nothing (a savepoint when nested)."""
        with self.db.atomic():
            yield self

    def prune_history(self, now: datetime, history_days: int) -> Pruned | None:
        """Delete timeline and cycle history older than ``history_days`` (never ledger
        rows, links, cursors or tokens), at most once a day; ``None`` when not due."""
        return prune_history(self.db, now, history_days)

    def backup(self, target: Path, *, force: bool = False) -> int:
        """A consistent copy of this database at ``target`` (0600); its size in bytes.
        See ``cancelsync.store.housekeeping.backup_database``."""
        return backup_database(self.db.conn, target, force=force)

    def close(self) -> None:
        self.db.close()
