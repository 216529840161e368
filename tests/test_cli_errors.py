"""Never a traceback: each trouble a user meets in the first hour is one line naming the path
or value and the fix, with exit 2 for what the user must fix (the real CLI, as a child)."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cli_proc import assert_clean_failure, child_env, cli, faulty, unprivileged
from conftest import MINIMAL_CONFIG

from cancelsync.sandbox.harness import Sandbox
from cancelsync.store import Store

# conftest's smallest config, with a database path to fill in and a market.
CONFIG = '[worker]\ndatabase = "{database}"\n\n' + MINIMAL_CONFIG + 'market = "US"\n'
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def write_config(
    folder: Path, database: str = "cancelsync.db", **worker: object
) -> Path:
    """A valid config in ``folder`` (literal secrets) with its database at ``database``."""
    text = CONFIG.format(database=database)
    extra = "".join(f"{k} = {v}\n" for k, v in worker.items())
    path = folder / "cancelsync.toml"
    path.write_text(text.replace("[magento]", extra + "\n[magento]"), encoding="utf-8")
    return path


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """Both simulators on loopback, one store registered."""
    with Sandbox() as sb:
        sb.add_store("us-main")
        yield sb


def integrity(database: Path) -> str:
    """SQLite's own verdict on the file."""
    conn = sqlite3.connect(database)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


# --------------------------------------------------------------------------- paths


def test_unwritable_database_folder_is_one_line_for_check_status_and_run(
    tmp_path: Path,
) -> None:
    """`check`, `status` and `run --once` name the folder and the fix when it is not writable."""
    folder = tmp_path / "state"
    folder.mkdir()
    config = write_config(tmp_path, "state/cancelsync.db")
    folder.chmod(0o555)
    try:
        for argv in (["check"], ["status"], ["run", "--once"]):
            result = cli("--config", config, *argv, prefix=unprivileged())
            assert_clean_failure(result, 2, str(folder), "not writable", "Resolution:")
            assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    finally:
        folder.chmod(0o755)
    assert list(folder.iterdir()) == []


def test_lock_and_database_of_another_user_say_run_as_the_service_user(
    tmp_path: Path,
) -> None:
    """Files an admin created as another user: the message says to use `sudo -u cancelsync`."""
    config = write_config(tmp_path)
    Store.open(tmp_path / "cancelsync.db").close()
    lock = tmp_path / "cancelsync.db.lock"
    lock.write_text("1\n")
    for path in (lock, tmp_path / "cancelsync.db"):
        path.chmod(0o600)
        if os.geteuid() == 0:
            os.chown(path, 65534, 65534)
        else:
            path.chmod(0o400)
    run = cli("--config", config, "run", "--once", prefix=unprivileged())
    assert_clean_failure(run, 2, str(lock), "sudo -u cancelsync")
    status = cli("--config", config, "status", prefix=unprivileged())
    assert_clean_failure(
        status, 2, str(tmp_path / "cancelsync.db"), "sudo -u cancelsync"
    )
    if os.geteuid() == 0:
        assert "belongs to nobody" in run.stderr


def test_database_path_under_a_file(tmp_path: Path) -> None:
    """A database path whose parent is a file is reported by `check --offline` and `status`."""
    (tmp_path / "notafolder").write_text("x")
    config = write_config(tmp_path, "notafolder/cancelsync.db")
    for argv in (["check", "--offline"], ["status"]):
        assert_clean_failure(
            cli("--config", config, *argv), 2, "worker.database",
            f"{tmp_path / 'notafolder'} is a file, not a folder",
        )  # fmt: skip


# --------------------------------------------------------------------------- config files


def test_config_encodings(tmp_path: Path) -> None:
    """A UTF-8 BOM is accepted; UTF-16 and Latin-1 files say how to save them."""
    config = write_config(tmp_path)
    text = config.read_text(encoding="utf-8")
    config.write_bytes(b"\xef\xbb\xbf" + text.encode())
    ok = cli("--config", config, "check", "--offline")
    assert (ok.returncode, ok.stderr) == (0, "")
    config.write_bytes(text.encode("utf-16"))
    assert_clean_failure(
        cli("--config", config, "check", "--offline"), 2,
        str(config), "saved as UTF-16: save it as UTF-8",
    )  # fmt: skip
    config.write_bytes(text.replace("us-main", "us-main-é").encode("latin-1"))
    assert_clean_failure(
        cli("--config", config, "check", "--offline"), 2, str(config), "not UTF-8"
    )


def test_out_of_range_numbers_fail_check_offline_and_run(tmp_path: Path) -> None:
    """A poll interval too big to schedule and an overlap of 0 fail validation, not `run`."""
    config = write_config(
        tmp_path, poll_interval_seconds="99999999999999999999", overlap_seconds=0
    )
    for argv in (["check", "--offline"], ["run"]):
        err = assert_clean_failure(
            cli("--config", config, *argv), 2,
            "worker.poll_interval_seconds: must be between 1 and 86400",
            "worker.overlap_seconds: must be at least 30",
        )  # fmt: skip
        assert "OverflowError" not in err


# --------------------------------------------------------------------------- the database


def _garbage(path: Path) -> None:
    path.write_bytes(b"this is not a database\n" * 200)


def _many_pages(path: Path) -> int:
    """A real database of a few dozen pages at ``path``; returns its size."""
    store = Store.open(path)
    for n in range(400):
        store.timeline.add(at=T0, scope="store:us-main", kind="seen",
                           message=f"event {n} " + "x" * 200, tiktok_order_id=str(n))  # fmt: skip
    store.close()
    return path.stat().st_size


def _truncated(path: Path) -> None:
    size = _many_pages(path)
    with path.open("r+b") as fh:
        fh.truncate(size // 2)


def _table_less(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (body TEXT)")
    conn.commit()
    conn.close()


@pytest.mark.parametrize("damage", [_garbage, _truncated, _table_less],
                         ids=["garbage", "truncated", "table-less"])  # fmt: skip
def test_damaged_database_is_named_and_never_replaced(
    tmp_path: Path, damage: object
) -> None:
    """A damaged database file stops `status` with what to do, and is left as it was."""
    config = write_config(tmp_path)
    database = tmp_path / "cancelsync.db"
    damage(database)  # type: ignore[operator]
    before = database.read_bytes()
    err = assert_clean_failure(
        cli("--config", config, "status"), 2, str(database),
        "restore it from a backup", "move it aside", "first_run_lookback_hours",
    )  # fmt: skip
    assert len(err.strip().splitlines()) == 1
    assert database.read_bytes() == before


def test_damage_found_while_reading_is_named_too(tmp_path: Path) -> None:
    """Pages overwritten in the middle of the file (its header intact) are reported when a
    command reads them, with the same advice and exit 2."""
    config = write_config(tmp_path)
    database = tmp_path / "cancelsync.db"
    size = _many_pages(database)
    with database.open("r+b") as fh:
        fh.seek(size // 2)
        fh.write(b"\xa5" * (size - size // 2))
    err = assert_clean_failure(
        cli("--config", config, "explain", "7"), 2, str(database), "move it aside"
    )
    assert "malformed" in err


def test_garbage_database_stops_run_once(tmp_path: Path) -> None:
    """`run --once` on a garbage database exits 2 without touching it."""
    config = write_config(tmp_path)
    database = tmp_path / "cancelsync.db"
    _garbage(database)
    assert_clean_failure(
        cli("--config", config, "run", "--once"), 2, str(database), "move it aside"
    )
    assert database.read_bytes() == b"this is not a database\n" * 200


def test_database_turning_read_only_mid_run(sandbox: Sandbox, tmp_path: Path) -> None:
    """A write refused after a refund went out fails loudly; the next run refunds nothing twice."""
    placed = sandbox.place_order([{"sku": "A", "qty": 1, "price": 5.0}])
    sandbox.tiktok.buyer_cancel(placed.tiktok_order_id)
    config = sandbox.write_config(tmp_path / "cancelsync.toml")
    database = tmp_path / "cancelsync.db"

    result = faulty("read-only-after-refund", "--config", config, "run", "--once")

    assert_clean_failure(result, 2, str(database), "read-only")
    assert integrity(database) == "ok"
    store = Store.open(database)
    try:
        (row,) = store.db.query("SELECT state, attempts FROM ledger")
    finally:
        store.close()
    assert (row["state"], row["attempts"]) == ("pending", 1)  # recorded before the send
    cli("--config", config, "run", "--once")
    assert len(sandbox.magento.credit_memos(placed.magento_entity_id)) == 1
    assert sandbox.magento_server.journal.count(r"POST order/\{id\}/refund") == 1


@pytest.mark.parametrize("argv", [["run", "--once"], ["run"]], ids=["once", "service"])
def test_full_disk_mid_run(sandbox: Sandbox, tmp_path: Path, argv: list[str]) -> None:
    """A database that cannot grow stops the run, or the service, with exit 1 and one line;
    a later run finishes the job with one credit memo per cancelled order."""
    placed = [
        sandbox.place_order([{"sku": f"S{i}", "qty": 1, "price": 5.0}])
        for i in range(12)
    ]
    for p in placed:
        sandbox.tiktok.buyer_cancel(p.tiktok_order_id)
    config = sandbox.write_config(tmp_path / "cancelsync.toml")
    database = tmp_path / "cancelsync.db"

    result = faulty("disk-full", "--config", config, *argv)

    err = assert_clean_failure(result, 1, str(database), "is full", "Resolution:")
    assert err.strip().splitlines()[-1].startswith("cancelsync: the disk holding ")
    assert integrity(database) == "ok"
    cli("--config", config, "run", "--once")
    memos = [len(sandbox.magento.credit_memos(p.magento_entity_id)) for p in placed]
    assert memos == [1] * len(placed)


# --------------------------------------------------------------------------- the last resort


def test_unexpected_error_is_one_line_and_debug_shows_the_traceback(
    tmp_path: Path,
) -> None:
    """A bug becomes one line and exit 1; `--debug` (before or after the command) prints the
    traceback."""
    config = write_config(tmp_path)
    plain = faulty("bug", "--config", config, "status")
    err = assert_clean_failure(plain, 1, "RuntimeError: boom", "--debug")
    assert len(err.strip().splitlines()) == 1
    debug = faulty("bug", "--config", config, "status", "--debug")
    assert debug.returncode == 1
    assert "Traceback" in debug.stderr
    assert "RuntimeError: boom" in debug.stderr


def test_a_closed_pipe_is_quiet(tmp_path: Path) -> None:
    """`status --json | head` that stops reading early costs no traceback on stderr."""
    config = write_config(tmp_path)
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first byte
    try:
        result = subprocess.run(  # noqa: S603 - fixed argument list
            [sys.executable, "-m", "cancelsync", "--config", str(config), "status", "--json"],
            stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=60, check=False,
            env=child_env(),
        )  # fmt: skip
    finally:
        os.close(write_end)
    assert result.returncode == 1
    assert result.stderr == ""


# --------------------------------------------------------------------------- file modes


def test_database_wal_shm_and_lock_are_private_whatever_the_umask(
    tmp_path: Path,
) -> None:
    """The database, its -wal and -shm files and the lock are created 0600 (no token file
    exists: rotated tokens live in the database)."""
    from cancelsync.lock import InstanceLock

    old = os.umask(0)
    try:
        database = tmp_path / "state" / "cancelsync.db"
        with InstanceLock(database):
            store = Store.open(database)
            try:
                store.cursors.advance("store:x", "s", 1, T0)
                names = sorted(p.name for p in database.parent.iterdir())
                modes = {
                    p.name: stat.S_IMODE(p.stat().st_mode)
                    for p in database.parent.iterdir()
                }
            finally:
                store.close()
    finally:
        os.umask(old)
    assert names == ["cancelsync.db", "cancelsync.db-shm", "cancelsync.db-wal",
                     "cancelsync.db.lock"]  # fmt: skip
    assert set(modes.values()) == {0o600}, modes
