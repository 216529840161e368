"""TikTokClient end to end against the TikTok Shop simulator served on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from cancelsync.clients.http import RetryPolicy
from cancelsync.clients.tiktok.checks import check_tiktok
from cancelsync.clients.tiktok.client import TikTokClient
from cancelsync.clients.tiktok.tokens import TikTokAuthClient, TokenManager
from cancelsync.clock import FakeClock
from cancelsync.config import RefundToCancelConfig, StoreConfig
from cancelsync.errors import (
    AlreadyAppliedError,
    ApiError,
    AuthError,
    ConfigApiError,
    NotCancellableError,
    OutcomeUnknownError,
)
from cancelsync.sandbox.common import Fault, FaultPlan, SimulatorServer
from cancelsync.sandbox.tiktok import DemoSetup, TikTokSimulator
from cancelsync.store import Store
from cancelsync.store.tokens import TokenPair

SCOPE = "demo"
OOS = "seller_cancel_reason_out_of_stock"
CANCEL_ENDPOINT = r"POST /return_refund/\{v\}/cancellations"


@dataclass
class Env:
    sim: TikTokSimulator
    demo: DemoSetup
    server: SimulatorServer
    faults: FaultPlan
    clock: FakeClock
    session: requests.Session
    sleeps: list[float] = field(default_factory=list)

    def client(
        self,
        load: Callable[[], TokenPair | None] | None = None,
        persist: Callable[[TokenPair], None] | None = None,
    ) -> TikTokClient:
        """A client on the simulator; tokens default to the seeded demo pair."""
        pair = TokenPair(self.demo.access_token, self.demo.refresh_token)
        held = [pair]
        manager = TokenManager(
            self.auth(),
            load=load or (lambda: held[-1]),
            persist=persist or held.append,
            clock=self.clock,
            store_name=SCOPE,
        )
        return TikTokClient(
            self.session,
            base_url=self.server.url,
            app_key=self.demo.app_key,
            app_secret=self.demo.app_secret,
            tokens=manager,
            shop_cipher=self.demo.shop_cipher,
            clock=self.clock,
            timeout=5,
            retry=RetryPolicy(sleep=self.sleep),
        )

    def sleep(self, seconds: float) -> None:
        """The retry policy's sleep: recorded, and the fake clock moves on."""
        self.sleeps.append(seconds)
        self.clock.advance(seconds)

    def auth(self) -> TikTokAuthClient:
        return TikTokAuthClient(
            self.session,
            auth_base_url=self.server.url,
            app_key=self.demo.app_key,
            app_secret=self.demo.app_secret,
            timeout=5,
            retry=RetryPolicy(sleep=self.sleep),
        )

    def order(self, status: str = "AWAITING_SHIPMENT", quantity: int = 1) -> str:
        lines = [{"seller_sku": "TEE", "price": "10.00", "quantity": quantity}]
        return self.sim.create_order(self.demo.shop_id, lines, status=status)


@pytest.fixture(scope="module")
def server() -> Iterator[SimulatorServer]:
    """One loopback server for the module; each test plugs in a fresh simulator."""
    with SimulatorServer(TikTokSimulator(FakeClock())) as srv:
        yield srv


def _env(server: SimulatorServer, clock: FakeClock) -> Iterator[Env]:
    sim = TikTokSimulator(clock, seed=7)
    demo = sim.seed_demo()
    server.simulator = sim
    server.faults.clear()
    server.journal.clear()
    try:
        with requests.Session() as session:
            yield Env(sim, demo, server, server.faults, clock, session)
    finally:
        server.faults.clear()


@pytest.fixture
def env(server: SimulatorServer, clock: FakeClock) -> Iterator[Env]:
    """A fresh simulator with the demo app and shop, on a fake clock, on loopback."""
    yield from _env(server, clock)


def test_signed_calls_are_accepted(env: Env) -> None:
    """Shops, order search and detail, cancellations and eligibility all pass checks."""
    client = env.client()
    order_id = env.order(quantity=2)
    shops = client.get_authorized_shops()
    assert [s.tiktok_shop_id for s in shops] == [env.demo.shop_id]
    assert shops[0].cipher == env.demo.shop_cipher
    found = [o for page in client.search_orders() for o in page]
    assert [o.tiktok_order_id for o in found] == [order_id]
    (order,) = client.get_orders([order_id])
    assert len(order.lines) == 2
    assert [c for page in client.search_cancellations() for c in page] == []
    reasons = client.eligible_cancel_reasons(order_id)
    assert reasons is not None
    assert OOS in reasons
    assert {e.status for e in env.server.journal.entries()} == {200}


def test_token_rotation_across_two_runs_sharing_one_store(
    env: Env, tmp_path: Path
) -> None:
    """Run 1 refreshes and persists; run 2, a new store and client, uses the new pair."""
    db = tmp_path / "cancelsync.db"
    seed = TokenPair(env.demo.access_token, env.demo.refresh_token)
    first = Store.open(db)
    first.tokens.save(SCOPE, seed, None, env.clock.now())

    def bind(store: Store) -> TikTokClient:
        def load() -> TokenPair | None:
            found = store.tokens.get(SCOPE)
            return found[0] if found else None

        def persist(pair: TokenPair) -> None:
            store.tokens.save(SCOPE, pair, None, env.clock.now())

        return env.client(load, persist)

    env.sim.expire_access_tokens()
    try:
        bind(first).get_authorized_shops()  # 105002 → refresh → persisted → retried
    finally:
        first.close()
    second = Store.open(db)
    try:
        stored = second.tokens.get(SCOPE)
        assert stored is not None
        rotated = stored[0]
        assert rotated.access_token != seed.access_token
        assert rotated.refresh_token != seed.refresh_token
        assert rotated.access_token_expire_at is not None
        bind(second).get_authorized_shops()
        refreshes = env.server.journal.entries(r"GET /api/v2/token/refresh")
        assert len(refreshes) == 1
        last = env.server.journal.entries(r"GET /authorization/202309/shops")[-1]
        assert last.headers["x-tts-access-token"] == rotated.access_token
        # A week later the next run refreshes before sending, and persists again.
        env.clock.advance(7 * 86400)
        bind(second).get_authorized_shops()
        after = second.tokens.get(SCOPE)
        assert after is not None
        assert after[0].refresh_token != rotated.refresh_token
        assert len(env.server.journal.entries(r"GET /api/v2/token/refresh")) == 2
    finally:
        second.close()
    # The seed's refresh token died with the first rotation.
    with pytest.raises(AuthError) as info:
        env.auth().refresh(seed.refresh_token)
    assert info.value.code == 36004001


def test_expired_refresh_token_asks_to_reauthorize(env: Env) -> None:
    """When TikTok refuses the refresh, the error names the connect command."""
    env.sim.expire_access_tokens()
    env.sim.expire_refresh_tokens()
    with pytest.raises(AuthError) as info:
        env.client().get_authorized_shops()
    assert not info.value.refreshable
    assert "cancelsync connect --store demo --auth-code CODE" in (info.value.hint or "")


def test_page_tokens_with_plus_slash_equals_round_trip(env: Env) -> None:
    """Paging through the simulator's ``+/=`` tokens returns every order once."""
    created = {env.order() for _ in range(5)}
    client = env.client()
    pages = list(client.search_orders(page_size=2))
    assert [len(p) for p in pages] == [2, 2, 1]
    assert {o.tiktok_order_id for p in pages for o in p} == created
    tokens = [
        dict(e.query).get("page_token")
        for e in env.server.journal.entries(r"POST /order/202309/orders/search")
    ]
    assert tokens[0] is None
    for token in tokens[1:]:
        assert token is not None
        assert {"+", "/", "="} <= set(token)
    cancels = [env.sim.buyer_cancel(order_id) for order_id in sorted(created)]
    found = [
        c.cancel_id for page in client.search_cancellations(page_size=2) for c in page
    ]
    assert sorted(found) == sorted(cancels)


def test_429_burst_is_recovered(env: Env) -> None:
    """Three injected 429s with Retry-After are waited out, then the call succeeds."""
    env.order()
    env.faults.next_calls(
        r"POST /order/202309/orders/search",
        Fault(kind="status", status=429, retry_after=1),
        count=3,
    )
    orders = [o for page in env.client().search_orders() for o in page]
    assert len(orders) == 1
    assert env.sleeps == [1.0, 1.0, 1.0]


def test_rate_limited_simulator_is_recovered(env: Env) -> None:
    """The simulator's own 429 / 36009002 throttling is retried after Retry-After."""
    env.sim.set_rate_limit(1, retry_after=1)
    client = env.client()
    client.get_authorized_shops()
    assert client.get_authorized_shops()  # same second: throttled, waited, resent
    assert env.sleeps == [1.0]
    statuses = [e.status for e in env.server.journal.entries()]
    assert statuses == [200, 429, 200]


def test_lost_cancel_response_is_outcome_unknown_but_applied(env: Env) -> None:
    """The write happened, the reply was lost: OutcomeUnknownError after one request."""
    order_id = env.order()
    env.faults.next_calls(CANCEL_ENDPOINT, Fault(kind="lost_response"))
    client = env.client()
    with pytest.raises(OutcomeUnknownError):
        client.cancel_order(order_id, OOS)
    assert env.server.journal.count(CANCEL_ENDPOINT) == 1
    assert env.sim.order(order_id)["status"] == "CANCELLED"
    # Reconciling: the re-read shows it cancelled, and a resend is refused as done.
    assert client.get_order(order_id).status == "CANCELLED"
    with pytest.raises(AlreadyAppliedError):
        client.cancel_order(order_id, OOS)


def test_seller_cancel_succeeds_and_is_found_by_search(env: Env) -> None:
    """A seller cancel returns its id, which search cancellations then lists."""
    order_id = env.order(quantity=2)
    client = env.client()
    cancel_id, status = client.cancel_order(order_id, OOS)
    assert status == "CANCELLATION_REQUEST_SUCCESS"
    (record,) = [
        c for page in client.search_cancellations(order_ids=[order_id]) for c in page
    ]
    assert record.cancel_id == cancel_id
    assert record.role == "SELLER"
    assert record.accepted
    assert len(record.lines) == 2
    assert record.refund_total is not None


def test_buyer_request_is_found_and_approved(env: Env) -> None:
    """A pending buyer request has a deadline and approving it accepts the cancel."""
    order_id = env.order()
    cancel_id = env.sim.buyer_cancel(order_id, pending=True)
    client = env.client()
    (pending,) = [
        c
        for page in client.search_cancellations(
            cancel_types=["BUYER_CANCEL"],
            cancel_status=["CANCELLATION_REQUEST_PENDING"],
        )
        for c in page
    ]
    assert pending.cancel_id == cancel_id
    assert pending.seller_action_deadline is not None
    client.approve_cancellation(cancel_id, idempotency_key=f"approve:demo:{cancel_id}")
    client.approve_cancellation(cancel_id, idempotency_key=f"approve:demo:{cancel_id}")
    (record,) = env.sim.cancellations(order_id)
    assert record["cancel_status"] in (
        "CANCELLATION_REQUEST_SUCCESS",
        "CANCELLATION_REQUEST_COMPLETE",
    )


def _shipped(env: Env) -> tuple[str, str]:
    order_id = env.order()
    env.sim.ship(order_id)
    return order_id, OOS


def _completed(env: Env) -> tuple[str, str]:
    order_id = env.order()
    env.sim.ship(order_id)
    env.sim.deliver(order_id)
    env.sim.complete(order_id)
    return order_id, OOS


def _buyer_cancelled(env: Env) -> tuple[str, str]:
    order_id = env.order()
    env.sim.buyer_cancel(order_id)
    return order_id, OOS


def _pending_request(env: Env) -> tuple[str, str]:
    order_id = env.order()
    env.sim.buyer_cancel(order_id, pending=True)
    return order_id, OOS


def _unknown_reason(env: Env) -> tuple[str, str]:
    return env.order(), "seller_cancel_reason_made_up"


def _paid_key_on_unpaid(env: Env) -> tuple[str, str]:
    return env.order(status="UNPAID"), "seller_cancel_paid_reason_address_not_deliver"


def _retired_reason(env: Env) -> tuple[str, str]:
    env.sim.retire_reason("seller_cancel_reason_wrong_price")
    return env.order(), "seller_cancel_reason_wrong_price"


@pytest.mark.parametrize(
    ("setup", "expected", "code"),
    [
        (_shipped, NotCancellableError, 25001045),
        (_completed, AlreadyAppliedError, 25001051),
        (_buyer_cancelled, AlreadyAppliedError, 25001051),
        (_pending_request, AlreadyAppliedError, 25001011),
        (_unknown_reason, ConfigApiError, 25001014),
        (_paid_key_on_unpaid, ConfigApiError, 25001021),
        (_retired_reason, ConfigApiError, 25001020),
    ],
)
def test_seller_cancel_error_codes_are_mapped(
    env: Env,
    setup: Callable[[Env], tuple[str, str]],
    expected: type[ApiError],
    code: int,
) -> None:
    """Each refusal from the simulator raises the class the engine acts on."""
    order_id, reason = setup(env)
    with pytest.raises(expected) as info:
        env.client().cancel_order(order_id, reason)
    assert info.value.code == code
    assert info.value.request_id
    assert env.server.journal.count(CANCEL_ENDPOINT) == 1


def test_partial_cancel_needs_an_out_of_stock_reason(env: Env) -> None:
    """Item-level cancel with a price reason is refused (25005010); out of stock works."""
    order_id = env.order(quantity=2)
    client = env.client()
    line_id = client.get_order(order_id).lines[0].line_id
    with pytest.raises(NotCancellableError) as info:
        client.cancel_order(
            order_id, "seller_cancel_reason_wrong_price", order_line_item_ids=[line_id]
        )
    assert info.value.code == 25005010
    client.cancel_order(order_id, OOS, order_line_item_ids=[line_id])
    lines = client.get_order(order_id).lines
    assert [ln.cancelled for ln in lines] == [True, False]


def test_check_against_the_simulator_passes(server: SimulatorServer) -> None:
    """``check`` passes for the demo store when the clocks agree."""
    # The server's Date header is real time, so this test's fake clock starts there.
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    for env in _env(server, clock):
        store_cfg = StoreConfig(
            name=SCOPE,
            app_key=env.demo.app_key,
            app_secret=env.demo.app_secret,
            shop_id=env.demo.shop_id,
            magento_refund_to_tiktok_cancel=RefundToCancelConfig(
                enabled=True, cancel_reason="wrong_price"
            ),
        )
        results = check_tiktok(env.client(), store_cfg, clock=clock)
        assert [(r.name, r.ok, r.fix) for r in results] == [
            ("tiktok credentials", True, None),
            ("tiktok shop", True, None),
            ("tiktok cancel reason", True, None),
            ("tiktok clock", True, None),
        ]
