"""The CLI foundation: check --offline, status, explain, retry, usage errors, the lock."""

from __future__ import annotations

import io
import json
import os
import stat
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cancelsync.cli import EXIT_OK, EXIT_USAGE, main
from cancelsync.errors import LockHeldError
from cancelsync.lock import InstanceLock
from cancelsync.store import Link, ShopBinding, Store, TokenPair

pytestmark = pytest.mark.usefixtures("reset_logging", "clean_env")

WriteConfig = Callable[..., Path]
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
SCOPE = "store:us-main"  # the minimal config has no shop_id


def run(*argv: str) -> tuple[int, str]:
    """Run the CLI with ``argv``; return its exit code and what it wrote to stdout."""
    out = io.StringIO()
    code = main(list(argv), stdout=out)
    return code, out.getvalue()


def usage_exit(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Run argv expecting argparse's usage exit (2); return stderr."""
    with pytest.raises(SystemExit) as info:
        main(list(argv), stdout=io.StringIO())
    assert info.value.code == EXIT_USAGE
    return capsys.readouterr().err


@pytest.fixture
def config_path(tmp_path: Path, write_config: WriteConfig) -> Path:
    """A minimal valid config whose database lives in tmp_path."""
    return write_config(tmp_path)


def seeded(config_path: Path) -> Store:
    """Open the config's database (the caller closes it)."""
    return Store.open(config_path.parent / "cancelsync.db")


def add_action(store: Store, key: str, state: str, **ids: object) -> int:
    """Add a ledger row in ``state`` and return its action id."""
    entry = store.ledger.begin(
        key, scope=SCOPE, store_name="us-main", direction="tiktok_cancel_to_magento_refund",
        action="magento_refund", now=T0, state=state, **ids,
    )  # fmt: skip
    return entry.action_id


# --------------------------------------------------------------------------- check --offline


def test_check_offline_valid_config(
    config_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A valid config exits 0, says so on stdout and prints nothing on stderr."""
    code, out = run("--config", str(config_path), "check", "--offline")
    assert code == EXIT_OK
    first, *rest = out.splitlines()
    assert first == f"config {config_path}: valid (1 store(s): us-main)"
    # The fixture's fake Magento credentials are not 32 characters: warned, not refused.
    assert all(line.startswith("  warning: magento ") for line in rest)
    assert capsys.readouterr().err == ""
    assert not (config_path.parent / "cancelsync.db").exists()


def test_check_offline_finds_the_config_through_the_environment(
    config_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    """Without --config, $CANCELSYNC_CONFIG names the file."""
    clean_env.setenv("CANCELSYNC_CONFIG", str(config_path))
    code, out = run("check", "--offline")
    assert code == EXIT_OK
    assert "valid" in out


def test_check_offline_falls_back_to_cancelsync_toml_in_the_working_folder(
    config_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With neither --config nor the variable, ./cancelsync.toml is used."""
    monkeypatch.chdir(config_path.parent)
    assert run("check", "--offline")[0] == EXIT_OK


def test_check_offline_bad_config_lists_every_problem(
    tmp_path: Path, write_config: WriteConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad config exits 2 and lists each problem on stderr, with no traceback."""
    path = write_config(
        tmp_path,
        "[worker]\npoll_interval_seconds = true\n"
        "[magento]\nbase_url = 'magento.test'\nauth = 'bearer'\n"
        "[[stores]]\nname = 'us-main'\napp_key = 'k'\nmarket = 'XX'\n",
    )
    code, out = run("--config", str(path), "check", "--offline")
    err = capsys.readouterr().err
    assert code == EXIT_USAGE
    assert out == ""
    assert err.startswith("cancelsync: invalid configuration:\n")
    for problem in (
        "worker.poll_interval_seconds: expected an integer, got True",
        "magento.base_url: 'magento.test' is not an http(s) URL",
        "magento.token: missing",
        "stores[us-main].app_secret: missing",
        "stores[us-main].market: unknown market 'XX'",
    ):
        assert f"  - {problem}" in err
    assert "Traceback" not in err


def test_check_offline_missing_config_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A config file that does not exist is a config error (exit 2) saying how to fix it."""
    code, _ = run("--config", str(tmp_path / "nope.toml"), "check", "--offline")
    err = capsys.readouterr().err
    assert code == EXIT_USAGE
    assert (
        "nope.toml: file not found (pass --config PATH or set CANCELSYNC_CONFIG)" in err
    )
    assert "Traceback" not in err


# --------------------------------------------------------------------------- usage errors


@pytest.mark.parametrize(
    "argv",
    [(), ("frobnicate",), ("--bogus", "status"), ("retry",), ("retry", "1", "--all"),
     ("retry", "one"), ("explain",), ("reasons",), ("connect", "--store", "x"),
     ("status", "--yaml")],
    ids=["no-command", "unknown-command", "unknown-option", "retry-nothing", "retry-both",
         "retry-not-int", "explain-no-id", "reasons-no-store", "connect-no-code", "status-opt"],
)  # fmt: skip
def test_usage_errors_exit_2_with_a_message(
    capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]
) -> None:
    """Bad command lines exit 2 with usage and an error line, never a traceback."""
    err = usage_exit(capsys, *argv)
    assert "usage: cancelsync" in err
    assert "error:" in err
    assert "Traceback" not in err


def test_run_options_that_need_once(
    config_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`run --store` or `run --dry-run` without --once is a usage error (exit 2), not a
    config error."""
    for option in (["--store", "us-main"], ["--dry-run"]):
        err = usage_exit(capsys, "--config", str(config_path), "run", *option)
        assert err.startswith("usage: cancelsync run ")
        assert f"cancelsync run: error: {option[0]} only works with --once" in err
        assert "invalid configuration" not in err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    """--version prints the version and exits 0."""
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith("cancelsync ")


# --------------------------------------------------------------------------- status


def test_status_json_on_a_fresh_database_is_pipeable(
    config_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`status --json` on a new database writes only valid JSON to stdout."""
    code, out = run("--config", str(config_path), "status", "--json")
    assert code == EXIT_OK
    assert capsys.readouterr().err == ""
    data = json.loads(out)
    assert data["database"] == str(config_path.parent / "cancelsync.db")
    (s,) = data["stores"]
    assert s["name"] == "us-main"
    assert s["scope"] == SCOPE
    assert s["enabled"] is True
    assert s["cursors"] == {}
    assert s["last_cycle"] is None
    assert s["auth"] == {"status": "not connected"}
    assert s["directions"] == {
        "tiktok_cancel_to_magento_refund": True,
        "magento_refund_to_tiktok_cancel": False,
    }
    assert set(s["actions"].values()) == {0}
    assert s["needs_attention"] == []
    assert s["failed"] == []


def test_status_reports_cursors_cycles_and_attention(config_path: Path) -> None:
    """status shows cursors, the last cycle, counts and items needing attention."""
    store = seeded(config_path)
    try:
        store.cursors.advance(SCOPE, "cancellations", 1_800_000_000, T0)
        store.cycles.record(run_id="r1", scope=SCOPE, store_name="us-main", started_at=T0,
                            finished_at=T0, outcome="failed", counts={"seen": 1},
                            error="magento: HTTP 503")  # fmt: skip
        add_action(store, "a", "needs_attention", tiktok_order_id="576",
                   magento_increment_id="000000042", reason="already shipped")  # fmt: skip
        add_action(store, "b", "failed", tiktok_order_id="577")
        store.tokens.save(SCOPE, TokenPair("at", "rt", 1_800_000_000), None, T0)
    finally:
        store.close()
    code, out = run("--config", str(config_path), "status", "--json")
    (s,) = json.loads(out)["stores"]
    assert s["cursors"] == {"cancellations": 1_800_000_000}
    assert s["last_cycle"]["outcome"] == "failed"
    assert s["last_cycle"]["error"] == "magento: HTTP 503"
    assert s["actions"]["needs_attention"] == 1
    assert s["actions"]["failed"] == 1
    assert s["needs_attention"][0]["reason"] == "already shipped"
    assert s["failed"][0]["tiktok_order_id"] == "577"
    assert s["auth"]["status"] == "ok"

    code, text = run("--config", str(config_path), "status")
    assert code == EXIT_OK
    assert "store us-main  [store:us-main]" in text
    assert "cursor cancellations: 1800000000" in text
    assert "failed — magento: HTTP 503" in text
    assert "! #1 magento_refund tiktok 576 magento #000000042: already shipped" in text


def test_status_uses_the_bound_shop_id_as_scope(config_path: Path) -> None:
    """Once a store is bound to a TikTok shop, its state is read under shop:<id>."""
    store = seeded(config_path)
    try:
        store.shops.bind(ShopBinding("us-main", "7495", "ROW_x", "US", None), T0)
    finally:
        store.close()
    (s,) = json.loads(run("--config", str(config_path), "status", "--json")[1])[
        "stores"
    ]
    assert (s["scope"], s["tiktok_shop_id"], s["market"]) == ("shop:7495", "7495", "US")


def test_status_text_on_a_fresh_database(config_path: Path) -> None:
    """Plain `status` on a new database says the store never ran."""
    code, out = run("--config", str(config_path), "status")
    assert code == EXIT_OK
    assert "last cycle: never" in out
    assert "auth: not connected" in out


# --------------------------------------------------------------------------- explain


def test_explain_unknown_order_says_nothing_is_recorded(config_path: Path) -> None:
    """explain of an order the worker never saw prints a message (exit 1, like grep)."""
    code, out = run("--config", str(config_path), "explain", "576000")
    assert out == "nothing recorded for order 576000\n"
    assert code == 1


@pytest.mark.parametrize("order_ref", ["576", "000000042"])
def test_explain_shows_link_timeline_and_actions(
    config_path: Path, order_ref: str
) -> None:
    """explain finds an order by TikTok id or Magento increment id and prints its story."""
    store = seeded(config_path)
    try:
        store.links.save(Link("576", SCOPE, 42, "000000042", 1), T0)
        action_id = add_action(store, "refund:1", "done", tiktok_order_id="576",
                               magento_entity_id=42, reason="buyer_cancel")  # fmt: skip
        store.ledger.update("refund:1", T0, remote_id="cm-9", attempts=1)
        store.timeline.add(at=T0, scope=SCOPE, kind="seen", message="cancellation seen",
                           tiktok_order_id="576")  # fmt: skip
        store.timeline.add(at=T0, scope=SCOPE, kind="done", message="credit memo created",
                           magento_entity_id=42, action_id=action_id)  # fmt: skip
    finally:
        store.close()
    code, out = run("--config", str(config_path), "explain", order_ref)
    assert code == EXIT_OK
    assert "TikTok order 576 ↔ Magento order #000000042 (entity 42)" in out
    assert "cancellation seen" in out
    assert f"[#{action_id}] credit memo created" in out
    assert (
        f"#{action_id} magento_refund (tiktok_cancel_to_magento_refund) done remote=cm-9"
        in out
    )


# --------------------------------------------------------------------------- retry


def test_retry_unknown_action_exits_2_with_a_message(
    config_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """retry of an action id that does not exist exits 2 and says so."""
    code, out = run("--config", str(config_path), "retry", "42")
    err = capsys.readouterr().err
    assert code == EXIT_USAGE
    assert out == ""
    assert "no action #42" in err
    assert "invalid configuration" not in err
    assert "Traceback" not in err


def test_retry_one_and_all(config_path: Path) -> None:
    """retry ID re-queues one failed action; retry --all re-queues the rest."""
    store = seeded(config_path)
    try:
        first = add_action(store, "a", "failed")
        second = add_action(store, "b", "needs_attention")
        add_action(store, "c", "done")
    finally:
        store.close()
    assert run("--config", str(config_path), "retry", str(first)) == (
        EXIT_OK, f"re-queued action #{first}; the next run picks it up\n",
    )  # fmt: skip
    assert run("--config", str(config_path), "retry", "--all") == (
        EXIT_OK, f"re-queued 1 action(s) (#{second}); the next run picks them up\n",
    )  # fmt: skip
    store = seeded(config_path)
    try:
        assert store.ledger.counts(SCOPE)["pending"] == 2
        assert store.ledger.counts(SCOPE)["done"] == 1
    finally:
        store.close()


def test_retry_works_while_another_instance_holds_the_lock(config_path: Path) -> None:
    """retry needs no instance lock: it re-queues while the service holds it."""
    store = seeded(config_path)
    try:
        add_action(store, "a", "failed")
    finally:
        store.close()
    with InstanceLock(config_path.parent / "cancelsync.db"):
        code, out = run("--config", str(config_path), "retry", "--all")
    assert code == EXIT_OK
    assert out.startswith("re-queued 1 action(s)")
    store = seeded(config_path)
    try:
        assert store.ledger.counts(SCOPE)["pending"] == 1
    finally:
        store.close()


# --------------------------------------------------------------------------- the lock


def test_instance_lock_excludes_a_second_holder(tmp_path: Path) -> None:
    """Only one holder at a time; the lock is free again once released."""
    database = tmp_path / "data" / "cancelsync.db"
    first = InstanceLock(database).acquire()
    try:
        with pytest.raises(LockHeldError, match="another cancelsync instance"):
            InstanceLock(database).acquire()
    finally:
        first.release()
    with InstanceLock(database) as again:
        assert again.path == tmp_path / "data" / "cancelsync.db.lock"
    first.release()  # releasing twice is harmless


def test_lock_file_is_private_and_names_the_holder(tmp_path: Path) -> None:
    """The lock file is mode 0600 and holds the holder's process id."""
    old = os.umask(0)
    try:
        with InstanceLock(tmp_path / "cancelsync.db") as lock:
            assert stat.S_IMODE(lock.path.stat().st_mode) == 0o600
            assert lock.path.read_text() == f"{os.getpid()}\n"
    finally:
        os.umask(old)
