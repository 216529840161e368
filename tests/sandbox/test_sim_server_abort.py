"""The loopback front when a client gives up or dies mid-request: slow writes still
commit, and a body cut short of its Content-Length never reaches a simulator."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
import requests

from cancelsync.sandbox.common import Fault, FaultPlan, SimulatorServer
from cancelsync.sandbox.magento import MagentoSimulator

try:
    from test_magento_sim_support import ADMIN, new_sim, simple_order
    from test_tiktok_sim_support import idle_server, make_env, one_order
except ImportError:  # pragma: no cover - when tests/ becomes a package
    from .test_magento_sim_support import ADMIN, new_sim, simple_order
    from .test_tiktok_sim_support import idle_server, make_env, one_order

REFUND = "POST order/{id}/refund"
TT_CANCEL = "/return_refund/202309/cancellations"
ADDRESS = "seller_cancel_paid_reason_address_not_deliver"


@pytest.fixture
def sim() -> MagentoSimulator:
    simulator = new_sim()
    simple_order(simulator)
    return simulator


@pytest.fixture
def faults() -> FaultPlan:
    return FaultPlan(seed=3)


@pytest.fixture
def server(sim: MagentoSimulator, faults: FaultPlan) -> Iterator[SimulatorServer]:
    with SimulatorServer(sim, faults=faults) as srv:
        yield srv


def _wait_for_in_flight(server: SimulatorServer, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not server.in_flight():
        assert time.monotonic() < deadline, "the request never reached the server"
        time.sleep(0.01)


def test_slow_refund_commits_after_the_client_timed_out(
    sim: MagentoSimulator, server: SimulatorServer, faults: FaultPlan
) -> None:
    """A refund slower than the client's timeout is still applied once it completes."""
    faults.next_calls(REFUND, Fault("delay", seconds=0.6))
    with pytest.raises(requests.Timeout):
        requests.post(
            f"{server.url}/rest/V1/order/1/refund",
            json={},
            headers={"Authorization": ADMIN["authorization"]},
            timeout=0.2,
        )
    assert sim.credit_memos() == []  # not yet: the "transaction" is still running
    assert [f.fault for f in server.in_flight()] == ["delay"]

    assert server.wait_idle(5)

    assert [m["entity_id"] for m in sim.credit_memos(1)] == [1]
    entry = server.journal.entries(REFUND)[0]
    assert (entry.status, entry.fault) == (200, "delay")


def test_slow_refund_commits_after_the_client_process_was_killed(
    sim: MagentoSimulator, server: SimulatorServer, faults: FaultPlan
) -> None:
    """SIGKILLing the caller during a slow refund does not stop the refund."""
    faults.next_calls(REFUND, Fault("delay", seconds=0.8))
    code = (
        "import requests; requests.post("
        f"{server.url + '/rest/V1/order/1/refund'!r}, json={{}}, "
        f"headers={{'Authorization': {ADMIN['authorization']!r}}}, timeout=30)"
    )
    child = subprocess.Popen([sys.executable, "-c", code])  # noqa: S603 - fixed args
    try:
        _wait_for_in_flight(server)
        child.kill()
    finally:
        child.kill()
        child.wait(timeout=10)

    assert sim.credit_memos() == []
    assert server.wait_idle(5)
    assert [m["entity_id"] for m in sim.credit_memos(1)] == [1]


def test_slow_tiktok_cancel_admitted_before_the_token_expired_still_applies() -> None:
    """The access token is checked on arrival: expiring it during the delay changes
    nothing for a cancel that was already admitted."""
    with idle_server() as server, make_env(server) as env:
        order_id = one_order(env)
        server.faults.next_calls(r"POST /return_refund/\{v\}/cancellations",
                                 Fault("delay", seconds=0.5))  # fmt: skip
        replies: list[requests.Response] = []
        call = threading.Thread(
            target=lambda: replies.append(
                env.api.call(
                    "POST",
                    TT_CANCEL,
                    body={"order_id": order_id, "cancel_reason": ADDRESS},
                )
            )
        )
        call.start()
        try:
            _wait_for_in_flight(server)
            env.clock.advance(1)
            env.sim.expire_access_tokens()
        finally:
            call.join(timeout=10)

        assert replies[0].json()["code"] == 0
        assert env.sim.order(order_id)["status"] == "CANCELLED"
        assert env.api.code("GET", "/order/202507/orders", {"ids": order_id}) == 105002


def _send_raw(server: SimulatorServer, head: bytes, body: bytes) -> bytes:
    """Send a request by hand, half-close (the client is gone), return the reply."""
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(head + body)
        conn.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := conn.recv(4096):
            reply += chunk
    return reply


@pytest.mark.parametrize("sent", [b"", b'{"items": [{"order_item_id": 1, "qty"'])
def test_refund_body_shorter_than_its_content_length_is_refused(
    sim: MagentoSimulator, server: SimulatorServer, sent: bytes
) -> None:
    """A body cut short (client killed mid-send) is a 400 and refunds nothing, even
    when nothing of it arrived (an empty refund body would refund the whole order)."""
    head = (
        b"POST /rest/V1/order/1/refund HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Authorization: " + ADMIN["authorization"].encode() + b"\r\n"
        b"Content-Type: application/json\r\nContent-Length: 120\r\n\r\n"
    )

    reply = _send_raw(server, head, sent)

    assert reply.startswith(b"HTTP/1.1 400 ")
    assert sim.credit_memos() == []
    assert sim.order(1)["state"] == "processing"
    entry = server.journal.entries(REFUND)[0]
    assert (entry.status, entry.fault, entry.body) == (400, "incomplete_body", sent)


def test_complete_body_sent_by_hand_is_served(
    sim: MagentoSimulator, server: SimulatorServer
) -> None:
    """The same hand-made request with its whole body reaches Magento (control case)."""
    body = b'{"items": [{"order_item_id": 1, "qty": 1}]}'
    head = (
        b"POST /rest/V1/order/1/refund HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Authorization: " + ADMIN["authorization"].encode() + b"\r\n"
        b"Content-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n"
    )

    reply = _send_raw(server, head, body)

    assert reply.startswith(b"HTTP/1.1 200 ")
    assert [m["entity_id"] for m in sim.credit_memos(1)] == [1]
