"""End-to-end tests of MagentoClient against the Magento simulator on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
import requests

from cancelsync.clients.checks import CheckResult
from cancelsync.clients.http import RetryPolicy
from cancelsync.clients.magento import BearerAuth, MagentoClient, oauth1_auth
from cancelsync.clients.magento.checks import check_magento
from cancelsync.clients.magento.search import SearchCriteria
from cancelsync.clock import FakeClock
from cancelsync.errors import (
    AlreadyAppliedError,
    AuthError,
    FatalApiError,
    OutcomeUnknownError,
)
from cancelsync.models import MagentoOrder
from cancelsync.sandbox.common import Fault, SimulatorServer
from cancelsync.sandbox.magento import MagentoSimulator, OrderLine

REFUND = r"POST order/\{id\}/refund"
MEMOS = "GET creditmemos"


@dataclass
class Store:
    """A running simulator with its server, clock and an OAuth 1.0a client."""

    sim: MagentoSimulator
    server: SimulatorServer
    clock: FakeClock
    client: MagentoClient

    def bearer_client(self) -> MagentoClient:
        return MagentoClient(
            requests.Session(),
            base_url=self.server.url,
            store_code="default",
            timeout=5,
            auth=BearerAuth(self.sim.credentials.access_token),
            retry=RetryPolicy(attempts=1, sleep=lambda _s: None),
        )

    def import_order(self, tiktok_id: str, *, shipping: float = 5.0) -> int:
        lines = [
            OrderLine("TEE-M-BLK", 2, 19.99, "configurable", parent_sku="TEE"),
            OrderLine("TOTE", 1, 15.5),
        ]
        return self.sim.import_tiktok_order(tiktok_id, lines, shipping_amount=shipping)


def oauth_client(sim: MagentoSimulator, url: str) -> MagentoClient:
    c = sim.credentials
    return MagentoClient(
        requests.Session(),
        base_url=url,
        store_code="default",
        timeout=5,
        auth=oauth1_auth(
            c.consumer_key, c.consumer_secret, c.access_token, c.access_token_secret
        ),
        retry=RetryPolicy(attempts=3, sleep=lambda _s: None),
    )


@pytest.fixture
def store() -> Iterator[Store]:
    clock = FakeClock()
    sim = MagentoSimulator(clock=clock, input_limit_enabled=True)
    with SimulatorServer(sim) as server, oauth_client(sim, server.url) as client:
        yield Store(sim, server, clock, client)


def parent_and_child(order: MagentoOrder) -> tuple[int, list[int]]:
    parent = next(
        it for it in order.top_level_items if it.product_type == "configurable"
    )
    return parent.item_id, [
        parent.item_id,
        *(c.item_id for c in order.children_of(parent.item_id)),
    ]


def test_oauth1_reads_orders_by_tiktok_id(store: Store) -> None:
    """Signed reads find orders by TikTok id, keeping unknown ids as empty lists."""
    entity_id = store.import_order("576400000000000001")
    found = store.client.orders_by_tiktok_ids(
        ["576400000000000001", "576499999999999999"]
    )
    assert [o.magento_entity_id for o in found["576400000000000001"]] == [entity_id]
    assert found["576499999999999999"] == []
    order = store.client.get_order(entity_id)
    assert order.tiktok_order_id == "576400000000000001"
    assert [it.product_type for it in order.items] == [
        "configurable",
        "simple",
        "simple",
    ]


def test_keyset_pagination_spans_pages_without_loops_or_dupes(store: Store) -> None:
    """Eight memos at page size 3 arrive once each in three requests, all page 1."""
    for i in range(8):
        entity_id = store.import_order(f"5764100000000000{i:02d}")
        store.sim.create_credit_memo(entity_id, {"TOTE": 1}, shipping_amount=0)
    store.server.journal.clear()
    pages = list(store.client.iter_credit_memos(0, page_size=3))
    ids = [m.magento_creditmemo_id for page in pages for m in page]
    assert ids == sorted(set(ids))
    assert len(ids) == 8
    queries = [dict(e.query) for e in store.server.journal.entries(MEMOS)]
    assert len(queries) == 3
    assert {q["searchCriteria[currentPage]"] for q in queries} == {"1"}


def test_exact_multiple_stops_on_total_count_despite_last_page_quirk(
    store: Store,
) -> None:
    """Six memos at page size 3 take two requests; a page past the end repeats data."""
    for i in range(6):
        entity_id = store.import_order(f"5764200000000000{i:02d}")
        store.sim.create_credit_memo(entity_id, {"TOTE": 1}, shipping_amount=0)
    # The quirk itself: offset paging past the end returns the last page again.
    items, total = store.client.search("creditmemos", SearchCriteria().page(3, 99))
    assert total == 6
    assert [m["entity_id"] for m in items] == [4, 5, 6]
    store.server.journal.clear()
    ids = [
        m.magento_creditmemo_id
        for p in store.client.iter_credit_memos(0, page_size=3)
        for m in p
    ]
    assert ids == [1, 2, 3, 4, 5, 6]
    assert store.server.journal.count(MEMOS) == 2


def test_late_commit_is_picked_up_by_created_since(store: Store) -> None:
    """A memo committed after a higher id is missed by the cursor but found by time."""
    first = store.import_order("576430000000000001")
    second = store.import_order("576430000000000002")
    window_start = store.clock.now()
    store.clock.advance(2)
    late_id = store.sim.create_credit_memo(
        first, {"TOTE": 1}, shipping_amount=0, visible=False
    )
    store.clock.advance(1)
    seen_id = store.sim.create_credit_memo(second, {"TOTE": 1}, shipping_amount=0)
    assert late_id < seen_id
    seen = [
        m.magento_creditmemo_id for p in store.client.iter_credit_memos(0) for m in p
    ]
    assert seen == [seen_id]
    store.clock.advance(1)
    store.sim.commit_pending()
    assert list(store.client.iter_credit_memos(seen_id)) == []
    rescanned = store.client.credit_memos_created_since(window_start)
    assert {m.magento_creditmemo_id for m in rescanned} == {late_id, seen_id}
    later = store.client.credit_memos_created_since(
        store.clock.now() + timedelta(hours=1)
    )
    assert later == []


def test_keyset_and_late_commit_rescan_are_one_query(store: Store) -> None:
    """With ``created_since``, one search returns the memos after the cursor and the
    late-committed one below it (one filter group ORs the two), in id order."""
    first = store.import_order("576450000000000001")
    second = store.import_order("576450000000000002")
    third = store.import_order("576450000000000003")
    old_id = store.sim.create_credit_memo(first, {"TOTE": 1}, shipping_amount=0)
    store.clock.advance(600)
    window_start = store.clock.now()
    late_id = store.sim.create_credit_memo(
        second, {"TOTE": 1}, shipping_amount=0, visible=False
    )
    store.clock.advance(1)
    seen_id = store.sim.create_credit_memo(third, {"TOTE": 1}, shipping_amount=0)
    store.sim.commit_pending()
    store.server.journal.clear()

    pages = list(
        store.client.iter_credit_memos(seen_id - 1, created_since=window_start)
    )

    ids = [m.magento_creditmemo_id for page in pages for m in page]
    assert old_id not in ids
    assert ids == [late_id, seen_id]
    [query] = [dict(e.query) for e in store.server.journal.entries(MEMOS)]
    group = "searchCriteria[filter_groups][0][filters]"
    assert query[f"{group}[0][field]"] == "entity_id"
    assert query[f"{group}[1][field]"] == "created_at"


def test_credit_memos_of_several_orders_are_one_search(store: Store) -> None:
    """Memos of three orders come back per order from one ``order_id in`` search; an
    order without memos has an empty list."""
    orders = [store.import_order(f"57646000000000000{i}") for i in range(3)]
    a = store.sim.create_credit_memo(orders[0], {"TOTE": 1}, shipping_amount=0)
    b = store.sim.create_credit_memo(orders[2], {"TOTE": 1}, shipping_amount=0)
    store.server.journal.clear()

    memos = store.client.credit_memos_for_orders(orders)

    assert {k: [m.magento_creditmemo_id for m in v] for k, v in memos.items()} == {
        orders[0]: [a],
        orders[1]: [],
        orders[2]: [b],
    }
    assert store.server.journal.count(MEMOS) == 1


def test_partial_then_full_refund_then_already_applied(store: Store) -> None:
    """A partial refund keeps the order open, the rest closes it, repeats fail."""
    entity_id = store.import_order("576440000000000001", shipping=5.0)
    order = store.client.get_order(entity_id)
    parent_id, restock = parent_and_child(order)
    partial = store.client.refund_order(
        entity_id,
        items=[(parent_id, Decimal("1"))],
        shipping_amount=Decimal("0"),
        return_to_stock_items=restock,
        comment="cancelsync: partial",
    )
    after = store.client.get_order(entity_id)
    parent = after.item(parent_id)
    assert parent is not None and parent.qty_refunded == Decimal("1")  # noqa: PT018
    assert after.state == "processing"
    assert after.shipping_refunded == Decimal("0")
    memos = store.client.credit_memos_for_order(entity_id)
    assert [m.magento_creditmemo_id for m in memos] == [partial]
    assert memos[0].comments == ("cancelsync: partial",)

    tote = next(it for it in after.top_level_items if it.sku == "TOTE")
    full = store.client.refund_order(
        entity_id,
        items=[(parent_id, Decimal("1")), (tote.item_id, Decimal("1"))],
        shipping_amount=Decimal("5"),
        return_to_stock_items=restock,
        comment="cancelsync: rest",
    )
    assert full > partial
    closed = store.client.get_order(entity_id)
    assert closed.state == "closed"
    assert closed.total_refunded == closed.total_paid

    # Repeating with explicit items fails while totalling (qty above what is left),
    # before the state check; a child-only line reaches the "status of closed" check.
    with pytest.raises(FatalApiError, match="invalid quantity to refund"):
        store.client.refund_order(
            entity_id,
            items=[(tote.item_id, Decimal("1"))],
            shipping_amount=Decimal("0"),
            return_to_stock_items=(),
            comment="cancelsync: again",
        )
    with pytest.raises(AlreadyAppliedError, match="status of closed"):
        store.client.refund_order(
            entity_id,
            items=[(restock[1], Decimal("1"))],
            shipping_amount=Decimal("0"),
            return_to_stock_items=(),
            comment="cancelsync: again",
        )
    assert len(store.sim.credit_memos(entity_id)) == 2


def test_lost_refund_response_is_outcome_unknown_but_memo_exists(store: Store) -> None:
    """The refund applies but its reply is lost: one request, OutcomeUnknownError."""
    entity_id = store.import_order("576450000000000001")
    parent_id, restock = parent_and_child(store.client.get_order(entity_id))
    store.server.faults.next_calls(REFUND, Fault(kind="lost_response"))
    with pytest.raises(OutcomeUnknownError):
        store.client.refund_order(
            entity_id,
            items=[(parent_id, Decimal("2"))],
            shipping_amount=Decimal("0"),
            return_to_stock_items=restock,
            comment="cancelsync: lost",
        )
    assert store.server.journal.count(REFUND) == 1
    memos = store.client.credit_memos_for_order(entity_id)
    assert len(memos) == 1
    assert memos[0].comments == ("cancelsync: lost",)


def test_bearer_with_flag_off_raises_auth_error_with_hint(store: Store) -> None:
    """With the 2.4.4+ flag off a bearer token is anonymous; the hint names the flag."""
    store.import_order("576460000000000001")
    with store.bearer_client() as client:
        with pytest.raises(AuthError) as excinfo:
            client.orders_by_tiktok_ids(["576460000000000001"])
        assert excinfo.value.hint is not None
        assert "enable_integration_as_bearer=1" in excinfo.value.hint
        store.sim.integration_bearer_enabled = True
        found = client.orders_by_tiktok_ids(["576460000000000001"])
    assert len(found["576460000000000001"]) == 1


def by_name(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {r.name: r for r in results}


def test_check_tells_bearer_flag_from_missing_grant() -> None:
    """check blames the bearer flag, or lists the grants an OAuth integration lacks."""
    sim = MagentoSimulator(
        clock=FakeClock(),
        integration_resources=["Magento_Sales::actions_view"],
    )
    with SimulatorServer(sim) as server:
        store = Store(sim, server, FakeClock(), oauth_client(sim, server.url))
        with store.bearer_client() as bearer:
            cred = by_name(check_magento(bearer, auth_mode="bearer"))[
                "magento.credentials"
            ]
        assert not cred.ok
        assert cred.fix is not None and "enable_integration_as_bearer" in cred.fix  # noqa: PT018
        with store.client as client:
            cred = by_name(check_magento(client, auth_mode="oauth1"))[
                "magento.credentials"
            ]
        assert not cred.ok
        assert cred.fix is not None and "Magento_Sales::sales_creditmemo" in cred.fix  # noqa: PT018


def test_check_all_good_reports_msi(store: Store) -> None:
    """check on a fully granted OAuth integration passes and reports MSI semantics."""
    store.import_order("576470000000000001")
    results = by_name(check_magento(store.client, auth_mode="oauth1"))
    assert all(r.ok for r in results.values())
    assert "MSI enabled" in results["magento.restock"].detail


def test_latest_credit_memo_id_is_the_highest_visible_id(store: Store) -> None:
    """The newest memo id (sorted DESC, one row) seeds a fresh keyset cursor."""
    assert store.client.latest_credit_memo_id() is None
    for i in range(3):
        entity_id = store.import_order(f"5764200000000000{i:02d}")
        store.sim.create_credit_memo(entity_id, {"TOTE": 1}, shipping_amount=0)
    assert store.client.latest_credit_memo_id() == 3
    assert store.client.latest_credit_memo_id(store_ids=[9]) is None


class PlusEncodingClient(MagentoClient):
    """The client as it was: a query encoded like ``requests``' ``params=`` (space '+')."""

    def _get(self, endpoint: str, query: str | None = None) -> Any:
        if query:
            query = urlencode(parse_qsl(query, keep_blank_values=True))
        return super()._get(endpoint, query)


def test_check_runs_a_date_filtered_search_under_the_configured_auth(
    store: Store,
) -> None:
    """check sends one signed created_at search (a value with a space) and passes it."""
    results = by_name(
        check_magento(store.client, auth_mode="oauth1", clock=store.clock)
    )
    probe = results["magento.date_filter"]
    assert probe.ok, probe
    searches = store.server.journal.entries(MEMOS)
    dated = [
        e for e in searches
        if ("searchCriteria[filter_groups][0][filters][0][field]", "created_at")
        in e.query
    ]  # fmt: skip
    assert len(dated) == 1
    assert dated[0].headers["authorization"].startswith("OAuth ")
    since = (store.clock.now() - timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S")
    assert ("searchCriteria[filter_groups][0][filters][0][value]", since) in dated[
        0
    ].query
    assert dated[0].status == 200


def test_check_fails_when_a_date_filter_is_signed_wrongly() -> None:
    """A client that sends '+' for a space passes the plain probe but fails the dated one."""
    clock = FakeClock()
    sim = MagentoSimulator(clock=clock)
    c = sim.credentials
    with SimulatorServer(sim) as server:
        client = PlusEncodingClient(
            requests.Session(),
            base_url=server.url,
            store_code="default",
            timeout=5,
            auth=oauth1_auth(
                c.consumer_key, c.consumer_secret, c.access_token, c.access_token_secret
            ),
            retry=RetryPolicy(attempts=1, sleep=lambda _s: None),
        )
        with client:
            results = by_name(check_magento(client, auth_mode="oauth1", clock=clock))
    assert results["magento.credentials"].ok
    probe = results["magento.date_filter"]
    assert not probe.ok
    assert "signature is invalid" in probe.detail
    assert probe.fix is not None
    assert "%20" in probe.fix
