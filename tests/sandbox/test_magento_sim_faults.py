"""Transport faults and endpoint labels of the Magento simulator over HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from cancelsync.sandbox.common import Fault, FaultPlan, SimulatorServer, parse_request
from cancelsync.sandbox.magento import MagentoSimulator

try:
    from test_magento_sim_support import ADMIN, criteria, new_sim, simple_order
except ImportError:  # pragma: no cover - when tests/ becomes a package
    from .test_magento_sim_support import ADMIN, criteria, new_sim, simple_order

REFUND = "POST order/{id}/refund"
HEADERS = {"Authorization": ADMIN["authorization"]}


@pytest.fixture
def sim() -> MagentoSimulator:
    simulator = new_sim()
    simple_order(simulator)
    return simulator


@pytest.fixture
def faults() -> FaultPlan:
    return FaultPlan(seed=7)


@pytest.fixture
def server(sim: MagentoSimulator, faults: FaultPlan) -> Iterator[SimulatorServer]:
    with SimulatorServer(sim, faults=faults) as srv:
        yield srv


@pytest.fixture
def http(server: SimulatorServer) -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.headers.update(HEADERS)
        yield session


def test_refund_reply_is_a_bare_integer(
    server: SimulatorServer, http: requests.Session
) -> None:
    """Over HTTP the refund reply body is just the memo id."""
    resp = http.post(f"{server.url}/rest/V1/order/1/refund", json={}, timeout=5)
    assert resp.status_code == 200
    assert resp.content == b"1"
    assert resp.headers["Content-Type"].startswith("application/json")


def test_lost_response_applies_the_refund(
    sim: MagentoSimulator,
    server: SimulatorServer,
    http: requests.Session,
    faults: FaultPlan,
) -> None:
    """A lost response still creates the memo; the client sees a broken connection."""
    faults.next_calls(REFUND, Fault("lost_response"))
    with pytest.raises(requests.ConnectionError):
        http.post(f"{server.url}/rest/V1/order/1/refund", json={}, timeout=5)
    assert [m["entity_id"] for m in sim.credit_memos(1)] == [1]
    assert sim.order(1)["state"] == "closed"
    entry = server.journal.entries(REFUND)[0]
    assert (entry.status, entry.fault) == (None, "lost_response")


def test_dropped_request_is_not_applied(
    sim: MagentoSimulator,
    server: SimulatorServer,
    http: requests.Session,
    faults: FaultPlan,
) -> None:
    """A dropped connection never reaches the store."""
    faults.next_calls(REFUND, Fault("drop"))
    with pytest.raises(requests.ConnectionError):
        http.post(f"{server.url}/rest/V1/order/1/refund", json={}, timeout=5)
    assert sim.credit_memos() == []


def test_throttled_search_carries_retry_after(
    server: SimulatorServer, http: requests.Session, faults: FaultPlan
) -> None:
    """An injected 429 on GET creditmemos carries Retry-After; the next call works."""
    faults.next_calls("GET creditmemos", Fault("status", status=429, retry_after=2))
    url = f"{server.url}/rest/V1/creditmemos"
    query = dict(criteria(page_size=10))
    first = http.get(url, params=query, timeout=5)
    second = http.get(url, params=query, timeout=5)
    assert (first.status_code, first.headers["Retry-After"]) == (429, "2")
    assert second.status_code == 200
    assert server.journal.count("GET creditmemos") == 2


def test_invalid_json_over_http_is_a_400_not_a_hang(
    server: SimulatorServer, http: requests.Session
) -> None:
    """A broken JSON body comes back as Magento's 400 envelope."""
    resp = http.post(
        f"{server.url}/rest/V1/order/1/refund",
        data=b"{oops",
        headers={"Content-Type": "application/json"},
        timeout=5,
    )
    assert resp.status_code == 400
    assert resp.json() == {"message": "Decoding error."}


@pytest.mark.parametrize(
    ("method", "target", "label"),
    [
        ("GET", "/rest/V1/creditmemos?searchCriteria[pageSize]=1", "GET creditmemos"),
        ("GET", "/rest/default/V1/orders/12", "GET orders/{id}"),
        ("GET", "/rest/V1/orders", "GET orders"),
        ("POST", "/rest/V1/order/3/refund", "POST order/{id}/refund"),
        ("POST", "/rest/V1/orders/3/cancel", "POST orders/{id}/cancel"),
        ("POST", "/rest/V1/orders/3/comments", "POST orders/{id}/comments"),
        ("GET", "/rest/V1/creditmemo/3/comments", "GET creditmemo/{id}/comments"),
        ("GET", "/rest/V1/modules", "GET modules"),
        ("GET", "/rest/zz/V1/modules", "GET /rest/zz/V1/modules"),
    ],
)
def test_endpoint_labels(
    sim: MagentoSimulator, method: str, target: str, label: str
) -> None:
    """endpoint_name gives stable labels for faults (the raw path when unrouted)."""
    assert sim.endpoint_name(parse_request(method, target, {}, b"")) == label
