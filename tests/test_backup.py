"""backup PATH (online, 0600, no overwrite without --force) and history retention."""

from __future__ import annotations

import io
import os
import sqlite3
import stat
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cancelsync.cli import main
from cancelsync.lock import InstanceLock
from cancelsync.store import Link, Store

pytestmark = pytest.mark.usefixtures("reset_logging", "clean_env")

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
SCOPE = "store:us-main"


def run(*argv: str) -> tuple[int, str]:
    """Run the CLI; its exit code and stdout."""
    out = io.StringIO()
    return main(list(argv), stdout=out), out.getvalue()


@pytest.fixture
def config_path(tmp_path: Path, write_config: Callable[..., Path]) -> Path:
    """A minimal config with a database holding one link."""
    path = write_config(tmp_path)
    store = Store.open(tmp_path / "cancelsync.db")
    try:
        store.links.save(Link("T1", SCOPE, 7, "000000007", 1), T0)
    finally:
        store.close()
    return path


def test_backup_while_the_service_holds_the_lock_and_writes(config_path: Path) -> None:
    """backup copies a consistent database (0600) while another connection holds the
    lock and an open write transaction; the copy opens and holds the committed data."""
    target = config_path.parent / "copies" / "cs.db"
    target.parent.mkdir()
    writer = Store.open(config_path.parent / "cancelsync.db")
    try:
        with InstanceLock(config_path.parent / "cancelsync.db"), writer.unit_of_work():
            writer.links.save(Link("T2", SCOPE, 8, "000000008", 1), T0)  # uncommitted
            code, out = run("--config", str(config_path), "backup", str(target))
    finally:
        writer.close()
    assert code == 0
    assert out.startswith(
        f"backed up {config_path.parent / 'cancelsync.db'} to {target} ("
    )
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    copy = Store.open(target)
    try:
        assert copy.links.find_link("T1") is not None
        assert copy.links.find_link("T2") is None  # not committed when copied
    finally:
        copy.close()


def test_backup_refuses_to_overwrite_unless_forced(
    config_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An existing target is refused (exit 2) and kept; --force replaces it."""
    target = config_path.parent / "old.db"
    target.write_text("keep me")
    assert run("--config", str(config_path), "backup", str(target)) == (2, "")
    assert "exists; pass --force" in capsys.readouterr().err
    assert target.read_text() == "keep me"
    assert run("--config", str(config_path), "backup", str(target), "--force")[0] == 0
    with sqlite3.connect(target) as conn:
        assert conn.execute("SELECT COUNT(*) FROM links").fetchone()[0] == 1


def test_backup_to_an_unwritable_target_exits_2(
    config_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A target that cannot be written (under a file, not a folder) is a message and
    exit 2, and no partial copy is left."""
    blocker = config_path.parent / "not-a-folder"
    blocker.write_text("")
    code = run("--config", str(config_path), "backup", str(blocker / "c.db"))
    assert code == (2, "")
    assert f"cannot write {blocker / 'c.db'}" in capsys.readouterr().err
    assert (
        sorted(p.name for p in config_path.parent.iterdir() if "partial" in p.name)
        == []
    )


def test_prune_history_keeps_what_protects_against_a_second_refund() -> None:
    """Old timeline and cycle rows go (not an open action's, not each scope's latest
    cycle), ledger rows and links stay, and a second prune within a day does nothing."""
    store = Store.memory()
    old, recent = T0 - timedelta(days=100), T0 - timedelta(days=1)
    done = store.ledger.begin("k1", scope=SCOPE, store_name="us-main",
                              direction="tiktok_cancel_to_magento_refund",
                              action="magento_refund", now=old, state="done")  # fmt: skip
    open_ = store.ledger.begin("k2", scope=SCOPE, store_name="us-main",
                               direction="tiktok_cancel_to_magento_refund",
                               action="magento_refund", now=old,
                               state="needs_attention")  # fmt: skip
    store.links.save(Link("T1", SCOPE, 7, "000000007", 1), old)
    for at, action in ((old, done.action_id), (old, open_.action_id),
                       (old, None), (recent, None)):  # fmt: skip
        store.timeline.add(at=at, scope=SCOPE, kind="seen", message="m",
                           action_id=action)  # fmt: skip
    for started in (old, old + timedelta(hours=1)):
        store.cycles.record(run_id="r", scope=SCOPE, store_name="us-main",
                            started_at=started, finished_at=started, outcome="ok",
                            counts={})  # fmt: skip

    pruned = store.prune_history(T0, 90)

    assert pruned is not None
    assert (pruned.timeline, pruned.cycles) == (2, 1)
    kept = [dict(r) for r in store.db.query("SELECT action_id FROM timeline")]
    assert kept == [{"action_id": open_.action_id}, {"action_id": None}]
    assert store.cycles.last(SCOPE) is not None
    assert store.ledger.get("k1") is not None
    assert store.links.find_link("T1") is not None
    assert store.prune_history(T0 + timedelta(hours=23), 90) is None
    assert store.prune_history(T0 + timedelta(days=1, seconds=1), 90) is not None
