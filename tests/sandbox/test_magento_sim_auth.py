"""Magento simulator auth over real loopback HTTP, checked with requests-oauthlib."""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import quote, urlencode

import pytest
import requests
from requests_oauthlib import OAuth1

from cancelsync.clock import FakeClock
from cancelsync.sandbox.common import SimulatorServer, parse_request
from cancelsync.sandbox.magento import MagentoCredentials, MagentoSimulator

CREDS = MagentoCredentials()
TIMEOUT = 5
CRITERIA = {
    "searchCriteria[filter_groups][0][filters][0][field]": "ext_order_id",
    "searchCriteria[filter_groups][0][filters][0][value]": "5760 0001",
    "searchCriteria[filter_groups][0][filters][0][condition_type]": "eq",
    "searchCriteria[sortOrders][0][field]": "entity_id",
    "searchCriteria[sortOrders][0][direction]": "ASC",
    "searchCriteria[pageSize]": "300",
}
# Percent-encoded as a client must (reference §1): space as %20, brackets encoded.
QUERY = urlencode(list(CRITERIA.items()), quote_via=quote)


def oauth(method: str = "HMAC-SHA256", **overrides: str) -> OAuth1:
    keys = {
        "client_key": CREDS.consumer_key,
        "client_secret": CREDS.consumer_secret,
        "resource_owner_key": CREDS.access_token,
        "resource_owner_secret": CREDS.access_token_secret,
    }
    keys.update(overrides)
    return OAuth1(**keys, signature_method=method)


@pytest.fixture
def sim() -> MagentoSimulator:
    simulator = MagentoSimulator(clock=FakeClock(), store_codes={"default": 1, "fr": 2})
    simulator.import_tiktok_order("5760 0001", [{"sku": "A", "qty": 1, "price": 10}])
    return simulator


@pytest.fixture
def server(sim: MagentoSimulator) -> Iterator[SimulatorServer]:
    with SimulatorServer(sim) as srv:
        yield srv


@pytest.fixture
def http(server: SimulatorServer) -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def test_oauth1_sha256_with_percent_encoded_query_is_accepted(
    server: SimulatorServer, http: requests.Session
) -> None:
    """A requests-oauthlib HMAC-SHA256 GET whose query encodes a space as %20 passes."""
    assert "%20" in QUERY
    assert "+" not in QUERY
    resp = http.get(
        f"{server.url}/rest/default/V1/orders",
        params=QUERY,
        auth=oauth(),
        timeout=TIMEOUT,
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["total_count"] == 1
    assert body["items"][0]["ext_order_id"] == "5760 0001"


def test_oauth1_query_with_plus_for_space_is_refused_like_magento(
    server: SimulatorServer, http: requests.Session
) -> None:
    """``params=`` sends a space as ``+``: oauthlib signs a space, Magento a plus (401)."""
    prepared = requests.Request(
        "GET", f"{server.url}/rest/default/V1/orders", params=CRITERIA, auth=oauth()
    ).prepare()
    assert "5760+0001" in (prepared.url or "")
    resp = http.send(prepared, timeout=TIMEOUT)
    assert resp.status_code == 401
    assert resp.json() == {"message": "The signature is invalid. Verify and try again."}


def test_search_filters_still_read_plus_as_space() -> None:
    """Outside the signature check the query decodes like PHP's $_GET: ``+`` is a space."""
    sim = MagentoSimulator(clock=FakeClock())
    sim.import_tiktok_order("5760 0001", [{"sku": "A", "qty": 1, "price": 10}])
    query = urlencode(list(CRITERIA.items()))  # quote_plus: the space becomes "+"
    assert "5760+0001" in query
    headers = {"host": "magento.test", "authorization": f"Bearer {CREDS.admin_token}"}
    resp = sim.handle(parse_request("GET", f"/rest/V1/orders?{query}", headers, b""))
    assert resp.status == 200
    assert json.loads(resp.body)["total_count"] == 1


def test_oauth1_signed_json_post_is_accepted(
    server: SimulatorServer, http: requests.Session
) -> None:
    """A signed POST with a JSON body (not part of the signature) refunds the order."""
    resp = http.post(
        f"{server.url}/rest/V1/order/1/refund",
        json={"items": [{"order_item_id": 1, "qty": 1}], "notify": False},
        auth=oauth(),
        timeout=TIMEOUT,
    )
    assert resp.status_code == 200, resp.text
    assert resp.json() == 1


def test_hmac_sha1_is_refused(server: SimulatorServer, http: requests.Session) -> None:
    """HMAC-SHA1 signatures are refused with the 2.4.4+ template and the method name."""
    resp = http.get(
        f"{server.url}/rest/V1/orders/1", auth=oauth("HMAC-SHA1"), timeout=5
    )
    assert resp.status_code == 400
    assert resp.json() == {
        "message": "Signature method %1 is not supported",
        "parameters": ["HMAC-SHA1"],
    }


def test_wrong_secret_gives_invalid_signature(
    server: SimulatorServer, http: requests.Session
) -> None:
    """A request signed with the wrong token secret gets the invalid-signature 401."""
    auth = oauth(resource_owner_secret="x" * 32)
    resp = http.get(f"{server.url}/rest/V1/orders/1", auth=auth, timeout=TIMEOUT)
    assert resp.status_code == 401
    assert resp.json() == {"message": "The signature is invalid. Verify and try again."}


def test_tampered_query_after_signing_is_rejected(
    server: SimulatorServer, http: requests.Session
) -> None:
    """Changing a signed query parameter breaks the signature."""
    prepared = requests.Request(
        "GET", f"{server.url}/rest/V1/orders", params=QUERY, auth=oauth()
    ).prepare()
    prepared.url = (prepared.url or "").replace("pageSize%5D=300", "pageSize%5D=200")
    resp = http.send(prepared, timeout=TIMEOUT)
    assert resp.status_code == 401
    assert resp.json()["message"] == "The signature is invalid. Verify and try again."


def test_replayed_nonce_is_rejected(
    server: SimulatorServer, http: requests.Session
) -> None:
    """Sending the very same signed request twice trips the nonce check."""
    prepared = requests.Request(
        "GET", f"{server.url}/rest/V1/orders/1", auth=oauth()
    ).prepare()
    first = http.send(prepared, timeout=TIMEOUT)
    second = http.send(prepared, timeout=TIMEOUT)
    assert first.status_code == 200
    assert second.status_code == 401
    assert second.json() == {
        "message": "The nonce is already being used by the consumer with ID %1",
        "parameters": ["1"],
    }


def _signed_header(server: SimulatorServer, drop: tuple[str, ...]) -> str:
    prepared = requests.Request(
        "GET", f"{server.url}/rest/V1/orders/1", auth=oauth()
    ).prepare()
    header = str(prepared.headers["Authorization"])
    parts = [p for p in header[6:].split(", ") if p.split("=")[0] not in drop]
    return "OAuth " + ", ".join(parts)


def test_missing_oauth_param_is_a_400(
    server: SimulatorServer, http: requests.Session
) -> None:
    """One missing oauth_* parameter gives the field-required 400 naming it."""
    header = _signed_header(server, ("oauth_nonce",))
    resp = http.get(
        f"{server.url}/rest/V1/orders/1", headers={"Authorization": header}, timeout=5
    )
    assert resp.status_code == 400
    assert resp.json() == {
        "message": '"%fieldName" is required. Enter and try again.',
        "parameters": {"fieldName": "oauth_nonce"},
    }


def test_several_missing_oauth_params_are_aggregated(
    server: SimulatorServer, http: requests.Session
) -> None:
    """Several missing oauth_* parameters come back as one aggregate input error."""
    header = _signed_header(server, ("oauth_nonce", "oauth_token"))
    resp = http.get(
        f"{server.url}/rest/V1/orders/1", headers={"Authorization": header}, timeout=5
    )
    body = resp.json()
    assert resp.status_code == 400
    assert body["message"] == "One or more input exceptions have occurred."
    assert [e["parameters"]["fieldName"] for e in body["errors"]] == [
        "oauth_nonce",
        "oauth_token",
    ]


@pytest.mark.parametrize("header", [None, f"Bearer {CREDS.access_token}"])
def test_anonymous_and_flag_off_bearer_get_the_misleading_401(
    server: SimulatorServer, http: requests.Session, header: str | None
) -> None:
    """No auth and a flag-off integration bearer both look like a missing ACL grant."""
    headers = {"Authorization": header} if header else {}
    resp = http.get(f"{server.url}/rest/V1/orders/1", headers=headers, timeout=TIMEOUT)
    assert resp.status_code == 401
    assert resp.json() == {
        "message": "The consumer isn't authorized to access %resources.",
        "parameters": {"resources": "Magento_Sales::actions_view"},
    }


def test_integration_bearer_works_when_flag_on(
    sim: MagentoSimulator, server: SimulatorServer, http: requests.Session
) -> None:
    """With integration_bearer_enabled the access token works as a bearer token."""
    sim.integration_bearer_enabled = True
    headers = {"Authorization": f"Bearer {CREDS.access_token}"}
    resp = http.get(f"{server.url}/rest/V1/orders/1", headers=headers, timeout=TIMEOUT)
    assert resp.status_code == 200
    assert resp.json()["entity_id"] == 1


def test_admin_bearer_always_works(
    server: SimulatorServer, http: requests.Session
) -> None:
    """An admin token is accepted whatever the integration flag says."""
    headers = {"Authorization": f"Bearer {CREDS.admin_token}"}
    resp = http.get(f"{server.url}/rest/all/V1/modules", headers=headers, timeout=5)
    assert resp.status_code == 200
    assert "Magento_InventorySales" in resp.json()


def test_missing_grant_names_the_resource(http: requests.Session) -> None:
    """An integration lacking the credit memo grant gets a 401 naming the resource."""
    sim = MagentoSimulator(integration_resources={"Magento_Sales::actions_view"})
    with SimulatorServer(sim) as srv:
        ok = http.get(
            f"{srv.url}/rest/V1/orders", params=QUERY, auth=oauth(), timeout=5
        )
        denied = http.get(
            f"{srv.url}/rest/V1/creditmemos", params=QUERY, auth=oauth(), timeout=5
        )
    assert ok.status_code == 200
    assert denied.status_code == 401
    assert denied.json()["parameters"] == {
        "resources": "Magento_Sales::sales_creditmemo"
    }


@pytest.mark.parametrize("path", ["/rest/nosuchstore/V1/orders/1", "/rest/V1/nothing"])
def test_unknown_store_code_or_route_is_404_before_auth(
    server: SimulatorServer, http: requests.Session, path: str
) -> None:
    """An unknown store code is read as part of the route, so no route matches."""
    resp = http.get(f"{server.url}{path}", timeout=TIMEOUT)
    assert resp.status_code == 404
    assert resp.json() == {"message": "Request does not match any route."}


def test_known_store_code_routes(
    server: SimulatorServer, http: requests.Session
) -> None:
    """A configured store code (here ``fr``) routes like the default store."""
    resp = http.get(f"{server.url}/rest/fr/V1/orders/1", auth=oauth(), timeout=TIMEOUT)
    assert resp.status_code == 200


def test_demo_credentials_have_magento_lengths() -> None:
    """The demo consumer key, secrets and token are 32 characters like real ones."""
    assert {len(v) for v in vars(CREDS).values() if isinstance(v, str)} == {32}
