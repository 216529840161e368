"""Service mode with worker.webhook_listen: a buyer cancel becomes a credit memo in
seconds, woken by the simulator's signed webhook, not by the next poll."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from cli_proc import child_env

from cancelsync.sandbox.common import free_port, listening, wait_until
from cancelsync.sandbox.demo_live import cycles_recorded
from cancelsync.sandbox.harness import Sandbox
from cancelsync.sandbox.tiktok.webhooks import Subscription
from cancelsync.webhooks import PATH

POLL_SECONDS = 3600  # a poll would never come within the test: only a wake can


def test_a_webhook_wakes_the_service_and_the_refund_follows_in_seconds(
    tmp_path: Path,
) -> None:
    """With an hour between polls, a buyer cancel is refunded within 5 s of the cancel:
    the simulator's delivery wakes the store's cycle."""
    port = free_port()
    with Sandbox() as sb:
        sb.add_store("us-main")
        config = sb.write_config(
            tmp_path / "cancelsync.toml",
            poll_interval_seconds=POLL_SECONDS,
            webhook_listen=f"127.0.0.1:{port}",
        )
        placed = sb.place_order([{"sku": "A", "qty": 1, "price": 5.0}])
        proc = subprocess.Popen(  # noqa: S603 - fixed argument list
            [sys.executable, "-m", "cancelsync", "--config", str(config), "run"],
            env=child_env(), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            # The first poll runs at start; wait for it and for the listener.
            assert wait_until(lambda: listening(port), 15)
            assert wait_until(
                lambda: cycles_recorded(tmp_path / "cancelsync.db") >= 1, 15
            )
            demo = sb.demo
            sb.tiktok.webhooks.subscribe(
                Subscription(demo.shop_id, "CANCELLATION_STATUS_CHANGE",
                             f"http://127.0.0.1:{port}{PATH}", demo.app_key,
                             demo.app_secret)
            )  # fmt: skip
            started = time.monotonic()
            sb.tiktok.buyer_cancel(placed.tiktok_order_id)
            refunded = wait_until(
                lambda: bool(sb.magento.credit_memos(placed.magento_entity_id)), 10
            )
            latency = time.monotonic() - started
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                _, err = proc.communicate(timeout=15)
            finally:
                proc.kill()
            sb.tiktok.webhooks.stop()
    assert refunded, err
    assert latency <= 5, f"refund {latency:.1f} s after the cancel"
    print(f"webhook-driven refund latency: {latency:.2f} s")
    assert proc.returncode == 0
    assert "cycle.woken" in err
