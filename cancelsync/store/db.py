"""Opening the SQLite database: file mode 0600, WAL, busy timeout, migrations, atomic units.

The database holds rotated TikTok tokens, so it is created readable by its owner only.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlite_utils import Database

from cancelsync.store.schema import migrations

BUSY_TIMEOUT_MS = 10_000


def open_database(path: Path | str | None) -> Database:
    """Open (creating with mode 0600) and migrate the database; ``None`` = in memory."""
    if path is None:
        conn = sqlite3.connect(
            ":memory:", check_same_thread=False, isolation_level=None
        )
    else:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            # Create the file ourselves so it is never world-readable, whatever the umask.
            fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
            os.close(fd)
        os.chmod(path, 0o600)
        conn = sqlite3.connect(
            str(path), timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False,
            isolation_level=None,
        )  # fmt: skip
        conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys=ON")
    db = Database(conn)
    migrations.apply(db)
    if path is not None:
        for suffix in ("-wal", "-shm"):
            side = Path(str(path) + suffix)
            if side.exists():
                os.chmod(side, 0o600)
    return db


@contextmanager
def atomic(db: Database) -> Iterator[None]:
    """One unit of work: everything inside commits together or not at all."""
    with db.atomic():
        yield


def iso(when: datetime) -> str:
    """How timestamps are stored: ISO 8601 UTC with seconds.

    Converted to UTC first: stored times are compared as text (``next_attempt_at <= ?``),
    which only orders correctly when every value has the same offset.
    """
    if when.tzinfo is not None:
        when = when.astimezone(UTC)
    return when.isoformat(timespec="seconds")
