"""Odd local time zones change nothing: every time cancelsync compares is UTC."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_proc import cli

from cancelsync.sandbox.harness import Sandbox


@pytest.mark.parametrize("tz", ["Pacific/Kiritimati", "America/St_Johns"])
def test_a_run_in_an_odd_time_zone_refunds_once_and_moves_on(
    tmp_path: Path, tz: str
) -> None:
    """UTC+14 and UTC-3:30: the refund is made once, the next run finds nothing new
    (no window shifted by the local offset, no event read twice or missed)."""
    with Sandbox() as sb:
        sb.add_store("us-main")
        config = sb.write_config(tmp_path / "cancelsync.toml")
        placed = sb.place_order([{"sku": "A", "qty": 1, "price": 5.0}])
        sb.tiktok.buyer_cancel(placed.tiktok_order_id)
        first = cli("--config", config, "run", "--once", env={"TZ": tz})
        second = cli("--config", config, "run", "--once", env={"TZ": tz})
        refunds = sb.magento_server.journal.count(r"POST order/\{id\}/refund")
        memos = sb.magento.credit_memos(placed.magento_entity_id)
    assert (first.returncode, second.returncode) == (0, 0), first.stderr[-2000:]
    assert refunds == 1
    assert len(memos) == 1
