"""Retention (``worker.history_days``) and the online backup of the database.

**Retention.** The timeline (``explain``) and the cycle history (``status``) grow with every
cycle; rows older than ``history_days`` are deleted, at most once a day (the time of the last
prune is kept in ``housekeeping``). What protects against a second refund or cancel is never
pruned: ledger rows (their idempotency keys), links, cursors and tokens stay. Timeline rows of
an action still open (not ``done``) stay too, so ``explain`` can still say why it waits, and
each scope keeps its latest cycle (``status`` shows it).

**Backup.** ``backup_database`` copies through SQLite's online backup API, in one step, from
a read transaction: the copy is one consistent state even while the service writes (WAL lets
it go on writing meanwhile).
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlite_utils import Database

from cancelsync.store.db import iso

PRUNE_JOB = "prune_history"
PRUNE_EVERY = timedelta(days=1)


@dataclass(frozen=True)
class Pruned:
    """What one prune deleted."""

    timeline: int
    cycles: int


def prune_history(db: Database, now: datetime, history_days: int) -> Pruned | None:
    """Delete timeline and cycle rows older than ``history_days``; ``None`` when a
    prune ran less than a day ago (nothing done)."""
    rows = list(db.query("SELECT done_at FROM housekeeping WHERE job = ?", [PRUNE_JOB]))
    if rows and rows[0]["done_at"] > iso(now - PRUNE_EVERY):
        return None
    cutoff = iso(now - timedelta(days=history_days))
    with db.atomic():
        timeline = db.execute(
            """DELETE FROM timeline WHERE at < ? AND (action_id IS NULL OR action_id
                 NOT IN (SELECT action_id FROM ledger WHERE state != 'done'))""",
            [cutoff],
        ).rowcount
        cycles = db.execute(
            """DELETE FROM cycles WHERE started_at < ? AND cycle_id NOT IN
                 (SELECT MAX(cycle_id) FROM cycles GROUP BY scope)""",
            [cutoff],
        ).rowcount
        db.execute(
            """INSERT INTO housekeeping (job, done_at) VALUES (?, ?)
               ON CONFLICT (job) DO UPDATE SET done_at = excluded.done_at""",
            [PRUNE_JOB, iso(now)],
        )
    return Pruned(timeline=int(timeline), cycles=int(cycles))


def backup_database(source: sqlite3.Connection, target: Path, *, force: bool) -> int:
    """Copy the database ``source`` is open on to ``target`` (mode 0600); its size.

    Written to a temporary file beside ``target`` and renamed over it only when complete
    and checked, so a failed backup never leaves a half copy under the name.

    Raises:
        FileExistsError: ``target`` exists and ``force`` is false.
        OSError: the folder cannot be written (or ``target`` is a folder).
        sqlite3.Error: the copy failed its check.
    """
    if target.is_dir():
        raise IsADirectoryError(target)
    if target.exists() and not force:
        raise FileExistsError(target)
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    fd = os.open(partial, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    os.close(fd)
    try:
        copy = sqlite3.connect(str(partial), isolation_level=None)
        try:
            source.backup(copy)  # pages=-1: one step, one consistent snapshot
            # The copy is a plain rollback-journal file: one file, nothing beside it.
            copy.execute("PRAGMA journal_mode=DELETE")
            check = copy.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise sqlite3.DatabaseError(f"the copy failed its check: {check}")
        finally:
            copy.close()
        with open(partial, "rb") as handle:
            os.fsync(handle.fileno())
        os.chmod(partial, 0o600)
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return target.stat().st_size
