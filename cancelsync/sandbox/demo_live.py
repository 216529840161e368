"""``make demo``'s last act: the service, woken by TikTok webhooks, holds then refunds.

The real service (``cancelsync run``, a child process) runs on the demo's database with an
hour between polls and ``worker.webhook_listen`` on loopback; the TikTok simulator delivers
signed webhooks to it. A buyer asks to cancel a new order: the Magento order goes on hold
(``hold_on_request``) within moments, not at the next poll. The seller approves the
request in Seller Center: the hold comes off and the credit memo follows. Both delays are
measured from the TikTok event to the change seen in the Magento simulator.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from cancelsync.sandbox.common import free_port, listening, wait_until
from cancelsync.sandbox.harness import PlacedOrder, Sandbox
from cancelsync.sandbox.tiktok.webhooks import Subscription
from cancelsync.webhooks import PATH

POLL_SECONDS = 3600  # no poll comes during the act: only webhooks can wake the service
WAIT_SECONDS = 15.0
LATENCY_GOAL_SECONDS = 5.0


@dataclass
class LiveFigures:
    """What the act measured; ``None``: it did not happen within ``WAIT_SECONDS``."""

    placed: PlacedOrder
    hold_seconds: float | None
    refund_seconds: float | None
    memos: int
    final_state: str
    service_exit: int | None


def react_in_seconds(
    sb: Sandbox, workdir: Path, log_file: TextIO, *, say: Callable[[str], None]
) -> LiveFigures:
    """Run the act; ``say`` prints a line for people as it goes."""
    port = free_port()
    config = sb.write_config(
        workdir / "cancelsync-service.toml",
        poll_interval_seconds=POLL_SECONDS,
        webhook_listen=f"127.0.0.1:{port}",
    )
    placed = sb.place_order([{"sku": "SOCKS-GRY", "qty": 3, "price": 6.0}])
    say(f"TikTok {placed.tiktok_order_id} ↔ Magento #{placed.magento_increment_id}: a "
        "new paid order (3 × SOCKS-GRY)")  # fmt: skip  # noqa: RUF001
    say(f"cancelsync run (the service) with webhook_listen = 127.0.0.1:{port}, polling "
        "every hour: only a webhook can wake it")  # fmt: skip
    proc = subprocess.Popen(  # noqa: S603 - a fixed argument list
        [sys.executable, "-m", "cancelsync", "--config", str(config), "run"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log_file,
    )  # fmt: skip
    hold = refund = None
    cycles = cycles_recorded(workdir / "cancelsync.db")
    try:
        # Its first poll runs at start: acted on only after it, so what follows is
        # the webhooks' doing.
        if wait_until(lambda: listening(port), WAIT_SECONDS) and wait_until(
            lambda: cycles_recorded(workdir / "cancelsync.db") > cycles, WAIT_SECONDS
        ):
            _subscribe(sb, f"http://127.0.0.1:{port}{PATH}")
            hold, refund = _act(sb, placed, say)
        else:
            say("the service did not start listening (see the log)")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=WAIT_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        sb.tiktok.webhooks.stop()
    order = sb.magento.order(placed.magento_entity_id)
    return LiveFigures(
        placed=placed,
        hold_seconds=hold,
        refund_seconds=refund,
        memos=len(sb.magento.credit_memos(placed.magento_entity_id)),
        final_state=str(order["state"]),
        service_exit=proc.returncode,
    )


def _act(
    sb: Sandbox, placed: PlacedOrder, say: Callable[[str], None]
) -> tuple[float | None, float | None]:
    """The buyer's request, then the seller's approval; each delay until Magento shows it."""
    entity_id = placed.magento_entity_id
    started = time.monotonic()
    cancel_id = sb.tiktok.buyer_cancel(placed.tiktok_order_id, pending=True)
    held = wait_until(
        lambda: sb.magento.order(entity_id)["state"] == "holded", WAIT_SECONDS
    )
    hold = time.monotonic() - started if held else None
    say(f"the buyer asks to cancel → Magento #{placed.magento_increment_id} is on hold "
        + (f"{hold:.2f} s later" if hold is not None else "— NOT within "
           f"{WAIT_SECONDS:g} s"))  # fmt: skip
    started = time.monotonic()
    sb.tiktok.seller_center_approve(cancel_id)
    done = wait_until(
        lambda: (
            bool(sb.magento.credit_memos(entity_id))
            and sb.magento.order(entity_id)["state"] != "holded"
        ),
        WAIT_SECONDS,
    )
    refund = time.monotonic() - started if done else None
    say("the seller approves in Seller Center → hold released, credit memo created "
        + (f"{refund:.2f} s later" if refund is not None else "— NOT within "
           f"{WAIT_SECONDS:g} s"))  # fmt: skip
    return hold, refund


def _subscribe(sb: Sandbox, address: str) -> None:
    """What ``cancelsync webhooks subscribe`` does against the real API, done directly."""
    demo = sb.demo
    for event_type in ("CANCELLATION_STATUS_CHANGE", "ORDER_STATUS_CHANGE"):
        sb.tiktok.webhooks.subscribe(
            Subscription(demo.shop_id, event_type, address, demo.app_key,
                         demo.app_secret)
        )  # fmt: skip


def cycles_recorded(database: Path) -> int:
    """Cycles recorded so far (read-only; the service owns the database)."""
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM cycles").fetchone()[0])
    except sqlite3.Error:
        return 0
