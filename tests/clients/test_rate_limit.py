"""The client-side rate limit: a thread-safe token bucket whose rate adapts (AIMD) to the
server's "too many requests" answers, never above the configured rate."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from decimal import Decimal

import pytest
import requests

from cancelsync.clients.http import RetryPolicy, TokenBucket
from cancelsync.clients.magento import MagentoClient, oauth1_auth
from cancelsync.sandbox.common import Fault, SimulatorServer
from cancelsync.sandbox.magento import MagentoSimulator


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def bucket(rate: float, clock: Clock) -> TokenBucket:
    return TokenBucket(rate, monotonic=clock, sleep=lambda s: None)


def test_throttling_halves_the_rate_once_per_second_down_to_the_floor() -> None:
    """Each 429 a second apart halves the rate; several at once count as one; the rate
    stops at the floor."""
    clock = Clock()
    b = bucket(40, clock)
    b.throttled()
    b.throttled()  # the other requests in flight met the same limit
    assert b.rate == 20
    for _ in range(10):
        clock.now += 1
        b.throttled()
    assert b.rate == b.floor == 0.5


def test_successes_climb_back_to_the_ceiling_and_never_past_it() -> None:
    """After a halving, answers raise the rate again, up to the configured one only."""
    clock = Clock()
    b = bucket(40, clock)
    b.throttled()
    b.succeeded()
    assert 20 < b.rate < 40
    for _ in range(500):
        b.succeeded()
    assert b.rate == b.ceiling == 40


def test_throttling_drops_the_saved_up_burst() -> None:
    """A bucket full of tokens makes the next request wait after a 429."""
    clock = Clock()
    b = bucket(10, clock)
    assert b.acquire() == 0.0  # a burst is allowed before
    b.throttled()
    assert b.acquire() == pytest.approx(1 / 5)


def test_concurrent_callers_never_exceed_the_rate() -> None:
    """Eight threads taking 40 tokens at 200/s (burst 1) take at least 39/200 s."""
    b = TokenBucket(200, capacity=1)
    started = time.monotonic()
    threads = [
        threading.Thread(target=lambda: [b.acquire() for _ in range(5)])
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert time.monotonic() - started >= 39 / 200 * 0.95


@pytest.fixture
def magento() -> Iterator[tuple[MagentoClient, TokenBucket, SimulatorServer]]:
    sim = MagentoSimulator()
    with SimulatorServer(sim) as server:
        limiter = TokenBucket(1000)
        creds = sim.credentials
        client = MagentoClient(
            requests.Session(),
            base_url=server.url,
            store_code="default",
            timeout=5,
            auth=oauth1_auth(creds.consumer_key, creds.consumer_secret,
                             creds.access_token, creds.access_token_secret),
            rate_limiter=limiter,
            retry=RetryPolicy(attempts=3, sleep=lambda s: None),
        )  # fmt: skip
        yield client, limiter, server


def test_magento_429_slows_the_client_down_and_answers_speed_it_up(
    magento: tuple[MagentoClient, TokenBucket, SimulatorServer],
) -> None:
    """A 429 (retried by the transport) halves the client's rate; later answers raise
    it again, towards the configured rate."""
    client, limiter, server = magento
    entity_id = server.simulator.import_tiktok_order(
        "576470000000000001", [{"sku": "A", "qty": 1, "price": 5.0}]
    )
    server.faults.next_calls("GET orders/{id}", Fault("status", status=429))

    order = client.get_order(entity_id)

    assert order.items[0].qty_ordered == Decimal("1")
    assert server.journal.count(r"GET orders/\{id\}") == 2
    lowered = limiter.rate
    assert 500 <= lowered < 1000
    for _ in range(30):
        client.get_order(entity_id)
    assert lowered < limiter.rate <= 1000
