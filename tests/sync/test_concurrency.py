"""Writes in flight at once, seen from the simulator: never more than
``worker.max_in_flight``, one at a time with 1, and each order refunded exactly once."""

from __future__ import annotations

import threading

import pytest

from cancelsync.sandbox.common import Fault

from .conftest import Harness

REFUND = r"POST order/\{id\}/refund"


def _peak_refunds_in_flight(harness: Harness, stop: threading.Event) -> list[int]:
    """Sample how many refund requests the Magento simulator holds at once."""
    peak = [0]

    def watch() -> None:
        while not stop.wait(0.01):
            now = sum(
                1
                for f in harness.sb.magento_server.in_flight()
                if f.endpoint == "POST order/{id}/refund"
            )
            peak[0] = max(peak[0], now)

    threading.Thread(target=watch, daemon=True).start()
    return peak


@pytest.mark.parametrize(("max_in_flight", "low"), [(1, 1), (4, 2)])
def test_writes_in_flight_never_exceed_the_setting(
    harness: Harness, max_in_flight: int, low: int
) -> None:
    """Eight slow refunds (0.2 s each on the server): at most ``max_in_flight`` are ever
    held by the simulator at once (several with 4), and every order gets one memo."""
    harness.sb.add_store("us-main")
    placed = [
        harness.sb.place_order([{"sku": f"C{i}", "qty": 1, "price": 5.0}])
        for i in range(8)
    ]
    for p in placed:
        harness.sb.tiktok.buyer_cancel(p.tiktok_order_id)
    harness.sb.magento_faults.at_rate(REFUND, Fault("delay", seconds=0.2), 1.0)
    stop = threading.Event()
    peak = _peak_refunds_in_flight(harness, stop)

    try:
        rc, _ = harness.run("run", "--once", max_in_flight=max_in_flight)
    finally:
        stop.set()

    assert rc == 0
    assert low <= peak[0] <= max_in_flight
    assert [len(harness.memos(p.magento_entity_id)) for p in placed] == [1] * 8
    assert harness.refund_posts() == 8
    assert {e.state for e in harness.ledger()} == {"done"}
