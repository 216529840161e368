"""Repair while the service runs (retry, resolve), backfill (run --once --since) and resync."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cancelsync.cli import main
from cancelsync.clock import FakeClock, SystemClock
from cancelsync.config import load_config
from cancelsync.lock import InstanceLock
from cancelsync.log import Redactor
from cancelsync.sandbox.harness import Sandbox
from cancelsync.service import Worker
from cancelsync.since import parse_since
from cancelsync.store import Store
from cancelsync.wiring import ClientFactory

pytestmark = pytest.mark.usefixtures("reset_logging", "clean_env")


class Cli:
    """The sandbox, a config folder and the real CLI."""

    def __init__(self, sb: Sandbox, folder: Path) -> None:
        self.sb = sb
        self.config = folder / "cancelsync.toml"
        self.database = folder / "cancelsync.db"

    def __call__(self, *args: str) -> tuple[int, str]:
        self.sb.write_config(self.config)
        out = io.StringIO()
        return main(["--config", str(self.config), *args], stdout=out), out.getvalue()

    def store(self) -> Store:
        return Store.open(self.database)


@pytest.fixture
def clock() -> FakeClock:
    """The simulators' clock: real time, movable (to stamp events in the past)."""
    return FakeClock(SystemClock().now())


@pytest.fixture
def cli(tmp_path: Path, clock: FakeClock) -> Iterator[Cli]:
    """Both simulators with store us-main, and the CLI pointed at them."""
    with Sandbox(clock) as sb:
        sb.add_store("us-main")
        yield Cli(sb, tmp_path)


def _held_order(cli: Cli) -> tuple[int, int]:
    """A cancelled TikTok order whose Magento order is on hold: one needs-attention
    action. Returns (action id, Magento entity id)."""
    placed = cli.sb.place_order([{"sku": "A", "qty": 1, "price": 5.0}])
    cli.sb.magento.hold_order(placed.magento_entity_id)
    cli.sb.tiktok.buyer_cancel(placed.tiktok_order_id)
    assert cli("run", "--once")[0] == 1
    with closing(cli.store()) as store:
        (entry,) = store.ledger.for_order(placed.tiktok_order_id)
    assert entry.state == "needs_attention"
    return entry.action_id, placed.magento_entity_id


def test_retry_while_the_service_holds_the_lock_is_picked_up_by_its_next_cycle(
    cli: Cli,
) -> None:
    """retry ID works while the service holds the instance lock, and the running
    service's next cycle (on its own long-open connection) refunds the order."""
    action_id, entity_id = _held_order(cli)
    cli.sb.magento.unhold_order(entity_id)
    cli.sb.write_config(cli.config)
    config = load_config(cli.config)
    with (
        InstanceLock(cli.database),
        closing(Store.open(cli.database)) as store,
        closing(ClientFactory(config, store, redactor=Redactor([]))) as clients,
    ):
        service = Worker(config, store, clients)
        code, out = cli("retry", str(action_id))
        assert (code, out) == (
            0, f"re-queued action #{action_id}; the next run picks it up\n"
        )  # fmt: skip
        (report,) = service.run_once()
        assert report.ok
        assert store.ledger.get_by_id(action_id).state == "done"  # type: ignore[union-attr]
    assert len(cli.sb.magento.credit_memos(entity_id)) == 1


def test_retry_of_a_done_action_says_so_and_exits_2(
    cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    """retry of an action already done exits 2 with a message and changes nothing."""
    placed = cli.sb.place_order([{"sku": "A", "qty": 1, "price": 5.0}])
    cli.sb.tiktok.buyer_cancel(placed.tiktok_order_id)
    assert cli("run", "--once")[0] == 0
    with closing(cli.store()) as store:
        (entry,) = store.ledger.for_order(placed.tiktok_order_id)
    capsys.readouterr()
    assert cli("retry", str(entry.action_id)) == (2, "")
    assert f"action #{entry.action_id} is already done" in capsys.readouterr().err
    with closing(cli.store()) as store:
        assert store.ledger.get_by_id(entry.action_id).state == "done"  # type: ignore[union-attr]


def test_resolve_while_the_service_holds_the_lock(
    cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    """resolve closes a needs-attention action under the service's lock, keeps the note
    in the timeline, and refuses (exit 1) an action that is no longer open."""
    action_id, _ = _held_order(cli)
    with InstanceLock(cli.database):
        code, out = cli("resolve", str(action_id), "--note", "refunded by hand")
        assert (code, out) == (
            0, f"resolved action #{action_id}; it will not be retried\n"
        )  # fmt: skip
        capsys.readouterr()
        assert cli("resolve", str(action_id)) == (1, "")
        assert f"action #{action_id} is done" in capsys.readouterr().err
        assert cli("resolve", "999") == (2, "")
        assert "no action #999" in capsys.readouterr().err
    with closing(cli.store()) as store:
        entry = store.ledger.get_by_id(action_id)
        assert entry is not None
        assert entry.state == "done"
        assert entry.reason == "resolved by hand: refunded by hand"
    assert (
        "resolved by hand: refunded by hand"
        in cli("explain", entry.tiktok_order_id or "")[1]
    )
    # status tells the done it synced from the done a person closed.
    assert "done 1 (1 resolved by hand)" in cli("status")[1]


def test_run_since_reads_back_an_event_the_cursor_went_past(
    cli: Cli, clock: FakeClock
) -> None:
    """An event stamped before the cursor (minus the overlap) is only found by
    run --once --since, refunded once, and the cursor does not move back."""
    assert cli("run", "--once")[0] == 0
    with closing(cli.store()) as store:
        (cursor,) = [c for c in store.cursors.all("shop:" + cli.sb.demo.shop_id)
                     if c.stream == "tiktok.cancellations"]  # fmt: skip
    placed = cli.sb.place_order([{"sku": "A", "qty": 1, "price": 5.0}])
    clock.set(SystemClock().now() - timedelta(hours=2))  # the outage: stamped 2 h ago
    cli.sb.tiktok.buyer_cancel(placed.tiktok_order_id)
    clock.set(SystemClock().now())

    assert cli("run", "--once")[0] == 0
    assert cli.sb.magento.credit_memos(placed.magento_entity_id) == []
    code, out = cli("run", "--once", "--since", "3h")
    assert code == 0
    assert out.startswith("re-read from ")
    assert cli("run", "--once", "--since", "3h")[0] == 0  # idempotent
    assert len(cli.sb.magento.credit_memos(placed.magento_entity_id)) == 1
    with closing(cli.store()) as store:
        after = store.cursors.get(cursor.scope, cursor.stream)
    assert after is not None
    assert after.position >= cursor.position


@pytest.mark.parametrize(
    ("text", "problem"),
    [("tomorrow", "is not a time"), ("2999-01-01", "in the future"),
     ("91d", "more than 90 days back")],
)  # fmt: skip
def test_run_since_refuses_bad_times_with_exit_2(
    cli: Cli, capsys: pytest.CaptureFixture[str], text: str, problem: str
) -> None:
    """--since that is unreadable, in the future or too far back is a usage error."""
    cli.sb.write_config(cli.config)
    with pytest.raises(SystemExit) as info:
        main(["--config", str(cli.config), "run", "--once", "--since", text])
    assert info.value.code == 2
    assert problem in capsys.readouterr().err


def test_parse_since_accepts_dates_date_times_and_spans() -> None:
    """ISO dates (midnight UTC), date-times (UTC unless offset) and spans are read."""
    now = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)
    assert parse_since("2026-11-01", now) == datetime(2026, 11, 1, tzinfo=UTC)
    assert parse_since("2026-11-01T08:30", now) == datetime(
        2026, 11, 1, 8, 30, tzinfo=UTC
    )
    assert parse_since("2026-11-01T08:30+02:00", now) == datetime(
        2026, 11, 1, 6, 30, tzinfo=UTC
    )
    assert parse_since("2h", now) == now - timedelta(hours=2)
    assert parse_since("3d", now) == now - timedelta(days=3)


def test_resync_decides_a_missed_cancellation_of_one_order(
    cli: Cli, clock: FakeClock
) -> None:
    """resync ORDER_ID (TikTok id, then Magento increment id) refunds a cancellation the
    cursor went past, once, and says what it decided."""
    assert cli("run", "--once")[0] == 0
    placed = cli.sb.place_order([{"sku": "A", "qty": 1, "price": 5.0}])
    clock.set(SystemClock().now() - timedelta(hours=2))
    cli.sb.tiktok.buyer_cancel(placed.tiktok_order_id)
    clock.set(SystemClock().now())

    code, out = cli("resync", placed.tiktok_order_id)
    assert code == 0, out
    assert f"resync of TikTok order {placed.tiktok_order_id}" in out
    assert "magento_refund done (new)" in out
    assert len(cli.sb.magento.credit_memos(placed.magento_entity_id)) == 1
    code, out = cli("resync", placed.magento_increment_id)
    assert code == 0
    assert "nothing new to decide" in out
    assert len(cli.sb.magento.credit_memos(placed.magento_entity_id)) == 1


def test_resync_of_an_unknown_order_exits_1(
    cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    """An order neither platform knows is reported, nothing is written."""
    assert cli("resync", "no-such-order")[0] == 1
    assert "was found in no enabled store" in capsys.readouterr().err
