"""Stop promptly: SIGTERM during a retry's backoff (the server said `Retry-After: 30`) ends
`run` and `run --once` within 5 s with exit 0, with no new attempt and nothing unrecorded."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cli_proc import child_env

from cancelsync.sandbox.common import Fault
from cancelsync.sandbox.harness import Sandbox
from cancelsync.sandbox.hostile import TIKTOK_CANCEL_SEARCH
from cancelsync.store import Store

REFUND = r"POST order/\{id\}/refund"
THROTTLED = Fault("status", status=429, retry_after=30)
STOP_WITHIN_SECONDS = 5.0


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """Both simulators on loopback, one store registered."""
    with Sandbox() as sb:
        sb.add_store("us-main")
        yield sb


def stop_during_backoff(
    config: Path, argv: list[str], backing_off: Callable[[], bool]
) -> tuple[int, str, float]:
    """Start the CLI, SIGTERM it once ``backing_off()`` (plus a moment), and return its exit
    code, stderr and how long it took to exit after the signal."""
    proc = subprocess.Popen(  # noqa: S603 - fixed argument list
        [sys.executable, "-m", "cancelsync", "--config", str(config), *argv],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=child_env(),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not backing_off():
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "the child never reached its backoff"
            time.sleep(0.05)
        time.sleep(0.5)  # well inside the 30 s wait now
        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        return proc.returncode, err, time.monotonic() - signalled
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_service_stops_during_a_read_backoff(sandbox: Sandbox, tmp_path: Path) -> None:
    """`run`: a SIGTERM while a throttled search waits 30 s to retry exits 0 at once; the
    search is not tried again."""
    sandbox.tiktok_faults.next_calls(TIKTOK_CANCEL_SEARCH, THROTTLED, count=4)
    config = sandbox.write_config(tmp_path / "cancelsync.toml")
    journal = sandbox.tiktok_server.journal

    code, err, took = stop_during_backoff(
        config, ["run"], lambda: journal.count(TIKTOK_CANCEL_SEARCH) >= 1
    )

    assert code == 0, err[-3000:]
    assert took < STOP_WITHIN_SECONDS, took
    assert '"sleep_seconds": 30.0' in err  # it was in the server's backoff
    assert "service.stopped" in err
    assert journal.count(TIKTOK_CANCEL_SEARCH) == 1


def test_run_once_stops_during_a_resend_wait(sandbox: Sandbox, tmp_path: Path) -> None:
    """`run --once`: a SIGTERM while a refused refund waits to be sent again exits 0 at once;
    nothing is sent again and the ledger holds the one send, still to be settled."""
    placed = sandbox.place_order([{"sku": "A", "qty": 1, "price": 5.0}])
    sandbox.tiktok.buyer_cancel(placed.tiktok_order_id)
    sandbox.magento_faults.next_calls(REFUND, THROTTLED, count=4)
    config = sandbox.write_config(tmp_path / "cancelsync.toml")
    journal = sandbox.magento_server.journal

    code, err, took = stop_during_backoff(
        config, ["run", "--once"], lambda: journal.count(REFUND) >= 1
    )

    assert code == 0, err[-3000:]
    assert took < STOP_WITHIN_SECONDS, took
    assert "cycle.stopped" in err
    assert journal.count(REFUND) == 1
    assert sandbox.magento.credit_memos(placed.magento_entity_id) == []
    store = Store.open(tmp_path / "cancelsync.db")
    try:
        rows = list(store.db.query("SELECT action, state, attempts FROM ledger"))
    finally:
        store.close()
    assert rows == [{"action": "magento_refund", "state": "pending", "attempts": 1}]
