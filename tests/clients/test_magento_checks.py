"""Tests for the Magento `check` probes (credentials, the misleading 401, restock)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
import responses

from cancelsync.clients.checks import CheckResult
from cancelsync.clients.http import RetryPolicy
from cancelsync.clients.magento import BearerAuth, MagentoClient, oauth1_auth
from cancelsync.clients.magento.checks import check_magento

BASE = "https://magento.test"
API = f"{BASE}/rest/default/V1"
EMPTY = {"items": [], "total_count": 0}


def unauthorized(resource: str) -> dict[str, object]:
    return {
        "message": "The consumer isn't authorized to access %resources.",
        "parameters": {"resources": resource},
    }


def make_client(mode: str) -> MagentoClient:
    auth = (
        BearerAuth("bearer-token")
        if mode == "bearer"
        else oauth1_auth("a", "b", "c", "d")
    )
    return MagentoClient(
        requests.Session(),
        base_url=BASE,
        store_code="default",
        timeout=3,
        auth=auth,
        retry=RetryPolicy(attempts=1, sleep=lambda _s: None),
    )


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def run(mode: str) -> dict[str, CheckResult]:
    with make_client(mode) as client:
        return {r.name: r for r in check_magento(client, auth_mode=mode)}


def test_all_good_with_msi(rsps: responses.RequestsMock) -> None:
    """Readable memos (also date-filtered), orders and MSI modules: four passes."""
    rsps.add(responses.GET, f"{API}/creditmemos", json={"items": [], "total_count": 12})
    rsps.add(responses.GET, f"{API}/orders", json={"items": [], "total_count": 40})
    rsps.add(responses.GET, f"{API}/modules", json=["Magento_InventorySales"])
    results = run("oauth1")
    assert len(results) == 4
    assert all(r.ok and r.fix is None for r in results.values())
    assert "12 credit memos" in results["magento.credentials"].detail
    assert "MSI enabled" in results["magento.restock"].detail


def test_bearer_flag_off_is_told_apart(rsps: responses.RequestsMock) -> None:
    """Bearer 401 on every read points at the 2.4.4+ bearer setting, not the ACL."""
    rsps.add(
        responses.GET,
        f"{API}/creditmemos",
        status=401,
        json=unauthorized("Magento_Sales::sales_creditmemo"),
    )
    rsps.add(
        responses.GET,
        f"{API}/orders",
        status=401,
        json=unauthorized("Magento_Sales::actions_view"),
    )
    results = run("bearer")
    cred = results["magento.credentials"]
    assert list(results) == ["magento.credentials"]
    assert not cred.ok
    assert cred.fix is not None
    assert "enable_integration_as_bearer=1" in cred.fix
    assert (
        "Allow OAuth Access Tokens to be used as standalone Bearer tokens" in cred.fix
    )


def test_bearer_missing_grant_is_told_apart(rsps: responses.RequestsMock) -> None:
    """Bearer 401 on memos while orders work is a missing grant, not the flag."""
    rsps.add(
        responses.GET,
        f"{API}/creditmemos",
        status=401,
        json=unauthorized("Magento_Sales::sales_creditmemo"),
    )
    rsps.add(responses.GET, f"{API}/orders", json=EMPTY)
    cred = run("bearer")["magento.credentials"]
    assert not cred.ok
    assert cred.fix is not None
    assert "Magento_Sales::sales_creditmemo" in cred.fix
    assert "enable_integration_as_bearer" not in cred.fix


def test_oauth1_401_lists_acl_resources(rsps: responses.RequestsMock) -> None:
    """With OAuth 1.0a the 401 fix lists parameters.resources."""
    rsps.add(
        responses.GET,
        f"{API}/creditmemos",
        status=401,
        json=unauthorized("Magento_Sales::sales_creditmemo"),
    )
    cred = run("oauth1")["magento.credentials"]
    assert not cred.ok
    assert cred.fix is not None
    assert "Magento_Sales::sales_creditmemo" in cred.fix


def test_oauth1_bad_signature_names_the_credentials(
    rsps: responses.RequestsMock,
) -> None:
    """An invalid signature points at the four credentials and the base URL."""
    rsps.add(
        responses.GET,
        f"{API}/creditmemos",
        status=401,
        json={"message": "The signature is invalid. Verify and try again."},
    )
    cred = run("oauth1")["magento.credentials"]
    assert cred.fix is not None
    assert "access_token_secret" in cred.fix


def test_unknown_route_points_at_store_code(rsps: responses.RequestsMock) -> None:
    """A 404 route error suggests checking base_url and store_code."""
    rsps.add(
        responses.GET,
        f"{API}/creditmemos",
        status=404,
        json={"message": "Request does not match any route."},
    )
    cred = run("oauth1")["magento.credentials"]
    assert not cred.ok
    assert cred.fix is not None
    assert "store_code" in cred.fix


def test_unreachable_store_fails_credentials(rsps: responses.RequestsMock) -> None:
    """A connection failure is a failed check naming the base URL."""
    rsps.add(
        responses.GET,
        f"{API}/creditmemos",
        body=requests.exceptions.ConnectionError("Connection refused"),
    )
    cred = run("oauth1")["magento.credentials"]
    assert not cred.ok
    assert cred.fix is not None
    assert "base_url" in cred.fix


@pytest.mark.parametrize("status", [401, 403])
def test_modules_forbidden_is_a_warning(
    rsps: responses.RequestsMock, status: int
) -> None:
    """Without Magento_Backend::admin the restock probe warns but does not fail."""
    rsps.add(responses.GET, f"{API}/creditmemos", json=EMPTY)
    rsps.add(responses.GET, f"{API}/orders", json={"items": [], "total_count": 3})
    rsps.add(
        responses.GET,
        f"{API}/modules",
        status=status,
        json=unauthorized("Magento_Backend::admin"),
    )
    restock = run("oauth1")["magento.restock"]
    assert restock.ok
    assert restock.fix is not None
    assert "Magento_Backend::admin" in restock.fix


def test_legacy_inventory_is_reported(rsps: responses.RequestsMock) -> None:
    """Without MSI modules the restock probe reports legacy semantics."""
    rsps.add(responses.GET, f"{API}/creditmemos", json=EMPTY)
    rsps.add(responses.GET, f"{API}/orders", json={"items": [], "total_count": 3})
    rsps.add(responses.GET, f"{API}/modules", json=["Magento_CatalogInventory"])
    assert "legacy" in run("oauth1")["magento.restock"].detail


def test_bad_tiktok_id_column_fails_orders_probe(rsps: responses.RequestsMock) -> None:
    """A 400 filtering on the configured column names the config key to fix."""
    rsps.add(responses.GET, f"{API}/creditmemos", json=EMPTY)
    rsps.add(
        responses.GET,
        f"{API}/orders",
        status=400,
        json={"message": 'Column not found: Unknown column "%1"', "parameters": ["x"]},
    )
    rsps.add(responses.GET, f"{API}/modules", json=[])
    orders = run("oauth1")["magento.orders"]
    assert not orders.ok
    assert orders.fix is not None
    assert "tiktok_order_id_field" in orders.fix


def test_no_tiktok_ids_yet_is_a_warning(rsps: responses.RequestsMock) -> None:
    """Orders readable but none with a TikTok id warns about the column."""
    rsps.add(responses.GET, f"{API}/creditmemos", json=EMPTY)
    rsps.add(responses.GET, f"{API}/orders", json=EMPTY)
    rsps.add(responses.GET, f"{API}/modules", json=[])
    orders = run("oauth1")["magento.orders"]
    assert orders.ok
    assert orders.fix is not None
