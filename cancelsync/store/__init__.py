"""The one owner of SQLite. Everything stored goes through ``Store``.

``Store.open(path)`` creates the file (mode 0600), turns on WAL and a busy timeout, and applies
the migrations. ``unit_of_work()`` wraps one page of events (ledger rows, links and the cursor)
in one transaction; nested units become savepoints.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlite_utils import Database

from cancelsync.store.cursors import Cursor, CursorRegressionError, Cursors
from cancelsync.store.db import open_database
from cancelsync.store.history import Cycles, Timeline
from cancelsync.store.ledger import Ledger, LedgerEntry
from cancelsync.store.links import Link, LinkConflictError, Links
from cancelsync.store.shops import ShopBinding, Shops
from cancelsync.store.tokens import TokenPair, Tokens, seed_fingerprint

__all__ = [
    "Cursor", "CursorRegressionError", "LedgerEntry", "Link", "LinkConflictError",
    "ShopBinding", "Store", "TokenPair", "seed_fingerprint",
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
        self.cycles = Cycles(db)
        self.timeline = Timeline(db)

    @classmethod
    def open(cls, path: Path | str) -> Store:
        return cls(open_database(path), Path(path))

    @classmethod
    def memory(cls) -> Store:
        return cls(open_database(None))

    @contextmanager
    def unit_of_work(self) -> Iterator[Store]:
        """Commit everything inside together, or nothing."""
        with self.db.atomic():
            yield self

    def close(self) -> None:
        self.db.close()
