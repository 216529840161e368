"""Opening the SQLite database: file mode 0600, WAL, busy timeout, migrations, atomic units.

The database holds rotated TikTok tokens, so it is created readable by its owner only.

An existing file is checked before anything is written to it: SQLite's header, its size
against the header's page count, and cancelsync's own tables (cheap checks: a full
``PRAGMA quick_check`` costs a fraction of a second per 100 MB, on every command). A damaged
or foreign file stops the command with what to do, never a silent fresh start over it;
damage deeper in the file surfaces as a ``sqlite3.DatabaseError`` when a page is read, which
``database_error`` reports the same way. ``database_error`` turns any ``sqlite3`` error, at open
or later in a run, into an error naming the file and the fix (a full disk, a read-only
folder, a file of another user, a damaged file).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

from sqlite_utils import Database

from cancelsync.errors import CancelSyncError, SetupError
from cancelsync.files import create_private, ensure_folder, not_writable
from cancelsync.store.schema import migrations

BUSY_TIMEOUT_MS = 10_000


class DiskFullError(CancelSyncError):
    """The disk holding the database is full (exit 1: it heals once space is freed)."""


def open_database(path: Path | str | None) -> Database:
    """Open (creating with mode 0600) and migrate the database; ``None`` = in memory.

    Raises:
        SetupError: the folder or file cannot be written, or the file is damaged or not
            a cancelsync database.
    """
    if path is None:
        memory = sqlite3.connect(
            ":memory:", check_same_thread=False, isolation_level=None
        )
        memory.execute("PRAGMA foreign_keys=ON")
        db = Database(memory)
        migrations.apply(db)
        return db
    path = Path(path)
    ensure_folder(path.parent)
    fresh = _is_new(path)
    # Create the file ourselves so it is never world-readable, whatever the umask.
    create_private(path)
    conn: sqlite3.Connection | None = None
    try:
        conn = sqlite3.connect(
            str(path), timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False,
            isolation_level=None,
        )  # fmt: skip
        if not fresh:
            _check_intact(conn, path)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys=ON")
        db = Database(conn)
        migrations.apply(db)
        if not fresh:
            _check_tables(conn, path)
        for suffix in ("-wal", "-shm"):
            side = Path(str(path) + suffix)
            if side.exists():
                os.chmod(side, 0o600)
    except sqlite3.Error as exc:
        if conn is not None:
            conn.close()
        raise database_error(path, exc) from None
    except PermissionError as exc:
        if conn is not None:
            conn.close()
        raise not_writable(Path(exc.filename or path)) from None
    except SetupError:
        if conn is not None:
            conn.close()
        raise
    return db


def _is_new(path: Path) -> bool:
    """No file yet, or the empty file a first open creates (and nothing in its WAL)."""
    try:
        if path.stat().st_size > 0:
            return False
    except FileNotFoundError:
        return True
    wal = Path(str(path) + "-wal")
    return not wal.exists() or wal.stat().st_size == 0


_MAGIC = b"SQLite format 3\x00"


def _check_intact(conn: sqlite3.Connection, path: Path) -> None:
    """An existing file is a whole SQLite database holding cancelsync's history."""
    with path.open("rb") as fh:
        header = fh.read(100)
    if len(header) < 100 or not header.startswith(_MAGIC):
        raise damaged(path, "not an SQLite database file")
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65_536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    # The header's page count is current when its "valid for" number matches the change
    # counter. With frames in the WAL, an interrupted checkpoint may have left the file
    # short for now: SQLite recovers that itself, so only a file without them is judged.
    wal = Path(str(path) + "-wal")
    counted = header[24:28] == header[92:96] and pages > 0
    if counted and not (wal.exists() and wal.stat().st_size > 0):
        size = path.stat().st_size
        if size < pages * page_size:
            raise damaged(path, f"truncated: {size} bytes of the {pages * page_size} its "
                                "header counts")  # fmt: skip
    if "_sqlite_migrations" not in _tables(conn):
        raise damaged(path, "a SQLite file without cancelsync's tables")


def _check_tables(conn: sqlite3.Connection, path: Path) -> None:
    missing = sorted(_expected_tables() - _tables(conn))
    if missing:
        raise damaged(path, f"tables missing: {', '.join(missing)}")


def _tables(conn: sqlite3.Connection) -> set[str]:
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    return {str(row[0]) for row in rows}


@cache
def _expected_tables() -> frozenset[str]:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    try:
        migrations.apply(Database(conn))
        return frozenset(_tables(conn))
    finally:
        conn.close()


def damaged(path: Path, detail: str) -> SetupError:
    """The error for a database file that cannot be used as it is."""
    return SetupError(
        f"{path} is not a usable cancelsync database ({detail}). Resolution: restore it "
        "from a backup, or move it aside (with its -wal and -shm files) and run again: a "
        "fresh database is safe, because before any write the worker finds the credit memos "
        "it marked and TikTok's cancelled lines, but it reads only first_run_lookback_hours "
        "back, so raise that for the first run if the outage was longer"
    )


def database_error(path: Path, exc: sqlite3.Error) -> CancelSyncError:
    """A ``sqlite3`` error on the database at ``path`` as the error the user can act on."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    text = str(exc)
    if name.startswith("SQLITE_FULL") or "disk is full" in text:
        return DiskFullError(
            f"the disk holding {path} is full ({text}); the change in progress was rolled "
            "back and nothing is half-written. Resolution: free space on that disk; the "
            "next run carries on"
        )
    if name.startswith("SQLITE_READONLY") or "readonly" in text:
        return SetupError(
            f"cannot write {path}: it is read-only ({text}); the change in progress was "
            "rolled back. Resolution: make the file and its folder writable by the user "
            "cancelsync runs as (sudo -u cancelsync cancelsync …), then run again"
        )
    if name.startswith(("SQLITE_CANTOPEN", "SQLITE_PERM", "SQLITE_AUTH")):
        return not_writable(path)
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or not isinstance(
        exc, sqlite3.OperationalError
    ):
        return damaged(path, text)
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return CancelSyncError(
            f"{path} stayed locked by another process for "
            f"{BUSY_TIMEOUT_MS // 1000} s ({text}). Resolution: try again; if it "
            "persists, look for a process holding the file (fuser)"
        )
    return CancelSyncError(f"database {path}: {text}")


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
