"""``make demo`` (sandbox.demo) and ``cancelsync sandbox`` (sandbox.prompt) end to end."""

from __future__ import annotations

import io
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from cancelsync.cli import main as cli_main
from cancelsync.config import load_config
from cancelsync.sandbox.common import wait_until
from cancelsync.sandbox.demo import run_demo
from cancelsync.sandbox.prompt import serve_sandbox


def _wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    if not wait_until(condition, timeout):
        pytest.fail("timed out waiting for the sandbox")


@pytest.mark.usefixtures("reset_logging")
def test_demo_syncs_every_scenario_once(tmp_path: Path) -> None:
    out = io.StringIO()
    result = run_demo(out, tmp_path)

    assert result.problems == []
    buyer = result.orders["buyer"].after
    assert buyer.magento_state == "closed"
    assert len(buyer.memos) == 1
    assert buyer.memos[0].by_cancelsync
    assert buyer.memos[0].grand_total == pytest.approx(24.99)
    assert (
        buyer.stock["TEE-RED-M"] == result.orders["buyer"].before.stock["TEE-RED-M"] + 1
    )
    system = result.orders["system"].after
    assert system.magento_state == "closed"
    assert [m.skus for m in system.memos] == [(("HOODIE-BLK-L", 2.0),)]
    line = result.orders["line"].after
    assert line.magento_state == "processing"
    assert [m.skus for m in line.memos] == [(("CAP-NVY", 1.0),)]
    assert line.tiktok_status == "AWAITING_SHIPMENT"
    assert result.orders["memo"].after.tiktok_status == "CANCELLED"
    shipped = result.orders["shipped"]
    assert shipped.after.tiktok_status == "IN_TRANSIT"
    assert any("IN_TRANSIT" in reason for reason in shipped.attention)
    assert [
        item["tiktok_order_id"]
        for item in result.status["stores"][0]["needs_attention"]
    ] == [shipped.order.placed.tiktok_order_id]
    assert result.orders["quiet"].actions == []

    assert result.first.exit_code == 1  # a new item needs attention
    assert (result.first.magento_writes, result.first.tiktok_writes) == (3, 1)
    assert result.second.exit_code == 0
    assert result.second.writes == 0

    text = out.getvalue()
    assert "NEEDS ATTENTION" in text
    assert "demo check: every order ended where it should." in text
    assert str(result.log_path) in text
    # The sync logged JSON lines to the work folder, not to the caller's stderr.
    first_line = result.log_path.read_text(encoding="utf-8").splitlines()[0]
    assert "event" in json.loads(first_line)

    # The last act: the service, woken by webhooks, held then refunded the new order.
    live = result.live
    assert live.hold_seconds is not None
    assert live.hold_seconds <= 5
    assert live.refund_seconds is not None
    assert live.refund_seconds <= 5
    assert (live.memos, live.final_state, live.service_exit) == (1, "closed", 0)
    assert "cycle.woken" in result.log_path.read_text(encoding="utf-8")
    assert "is on hold" in text


@pytest.mark.usefixtures("reset_logging")
def test_sandbox_serves_a_config_the_cli_can_sync_against(tmp_path: Path) -> None:
    config_path = tmp_path / "sandbox.toml"
    out = io.StringIO()
    read_fd, write_fd = os.pipe()
    with (
        os.fdopen(read_fd, "r", encoding="utf-8") as stdin,
        os.fdopen(write_fd, "w", encoding="utf-8") as commands,
    ):
        codes: list[int] = []
        thread = threading.Thread(
            target=lambda: codes.append(
                serve_sandbox(
                    out, write_config=config_path, stdin=stdin, interactive=True
                )
            ),
            daemon=True,
        )
        thread.start()
        _wait_for(lambda: "sandbox> " in out.getvalue())

        printed = out.getvalue()
        assert config_path.read_text(encoding="utf-8") in printed
        config = load_config(config_path)
        assert config.magento.base_url.startswith("http://127.0.0.1:")
        assert config.tiktok.api_base_url.startswith("http://127.0.0.1:")
        assert config.stores[0].magento_refund_to_tiktok_cancel.enabled

        commands.write("buyer-cancel 1\nrefund 2\n")
        commands.flush()
        _wait_for(lambda: "credit memo" in out.getvalue())
        run_out = io.StringIO()
        assert (
            cli_main(["--config", str(config_path), "run", "--once"], stdout=run_out)
            == 0
        )
        status_out = io.StringIO()
        cli_main(["--config", str(config_path), "status", "--json"], stdout=status_out)
        actions = json.loads(status_out.getvalue())["stores"][0]["actions"]
        assert actions["done"] == 2  # one Magento refund, one TikTok cancel
        assert actions["needs_attention"] == 0

        commands.write("orders\nquit\n")
        commands.flush()
        thread.join(timeout=5)
    assert not thread.is_alive()
    assert codes == [0]
    text = out.getvalue()
    assert "CANCELLED" in text
    assert text.rstrip().endswith("sandbox stopped")


def test_sandbox_waits_until_stopped(tmp_path: Path) -> None:
    stop = threading.Event()
    out = io.StringIO()
    codes: list[int] = []
    thread = threading.Thread(
        target=lambda: codes.append(
            serve_sandbox(out, stdin=io.StringIO(), interactive=False, stop=stop)
        ),
        daemon=True,
    )
    thread.start()
    _wait_for(lambda: "serving until Ctrl-C" in out.getvalue())
    config_text = out.getvalue().split("# save this config as sandbox.toml:\n", 1)[1]
    (tmp_path / "c.toml").write_text(config_text, encoding="utf-8")
    assert load_config(tmp_path / "c.toml").stores[0].name == "us-main"
    stop.set()
    thread.join(timeout=5)
    assert codes == [0]
