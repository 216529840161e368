"""The TikTok simulator over real HTTP: request checks, tokens, orders and paging."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from cancelsync.clock import to_epoch
from cancelsync.sandbox.common import Fault, SimulatorServer

try:
    from test_tiktok_sim_support import (
        Env,
        idle_server,
        make_env,
        one_order,
        tts_sign,
        tts_sign_pairs,
    )
except ImportError:  # pragma: no cover - when tests/ becomes a package
    from .test_tiktok_sim_support import (
        Env,
        idle_server,
        make_env,
        one_order,
        tts_sign,
        tts_sign_pairs,
    )

SHOPS = "/authorization/202309/shops"
SEARCH = "/order/202309/orders/search"
DETAIL = "/order/202309/orders"


@pytest.fixture(scope="module")
def server() -> Iterator[SimulatorServer]:
    with idle_server() as srv:
        yield srv


@pytest.fixture
def env(server: SimulatorServer) -> Iterator[Env]:
    with make_env(server) as environment:
        yield environment


def _now(env: Env) -> int:
    return to_epoch(env.clock.now())


# ---------------------------------------------------------------------- request checks


def test_signed_call_gets_the_envelope_and_authorized_shops(env: Env) -> None:
    """A signed shops call answers code 0, the shop and a dated request_id."""
    resp = env.api.call("GET", SHOPS, cipher=None)
    payload = resp.json()
    assert resp.status_code == 200
    assert set(payload) == {"code", "message", "request_id", "data"}
    assert payload["code"] == 0
    assert re.fullmatch(r"20261126103000[0-9A-F]+", payload["request_id"])
    (shop,) = payload["data"]["shops"]
    assert shop == {
        "id": env.shop_id,
        "name": "Sandbox Demo Shop",
        "region": "US",
        "seller_type": "LOCAL",
        "cipher": env.api.demo.shop_cipher,
        "code": shop["code"],
    }


def test_bad_sign_is_106001_with_http_401(env: Env) -> None:
    """A sign made with the wrong secret is refused with 106001 on HTTP 401."""
    resp = env.api.call("GET", SHOPS, cipher=None, secret="wrong-secret")
    assert resp.status_code == 401
    assert resp.json()["code"] == 106001


@pytest.mark.parametrize(
    ("skew", "code"), [(-301, 36009004), (-299, 0), (29, 0), (31, 36009004)]
)
def test_timestamp_window_is_five_minutes_back_thirty_seconds_ahead(
    env: Env, skew: int, code: int
) -> None:
    """Timestamps older than 5 min or over 30 s ahead of the sim clock get 36009004."""
    resp = env.api.call("GET", SHOPS, cipher=None, skew=skew)
    assert resp.json()["code"] == code
    if code:
        assert "timestamp" in resp.json()["message"]


def test_access_token_in_query_is_left_out_of_the_sign(env: Env) -> None:
    """An access_token sent on the URL (after signing) does not break the sign."""
    data = env.api.call(
        "GET", SHOPS, cipher=None, extra={"access_token": "whatever"}
    ).json()
    assert data["code"] == 0


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("unknown_app_key", 36009004),
        ("missing_sign", 36009004),
        ("missing_cipher", 106013),
        ("cipher_on_authorization", 36009004),
        ("foreign_cipher", 36009004),
        ("missing_token", 101000),
        ("unknown_token", 101000),
    ],
)
def test_request_check_errors(env: Env, case: str, code: int) -> None:
    """Each broken request part gets the reference's code."""
    api = env.api
    if case == "unknown_app_key":
        api.demo = dataclasses.replace(api.demo, app_key="nope")
        got = api.code("GET", SHOPS, cipher=None)
    elif case == "missing_sign":
        params = {"app_key": api.demo.app_key, "timestamp": str(_now(env))}
        got = api.session.get(
            api.base_url + SHOPS,
            params=params,
            headers={"x-tts-access-token": api.token or ""},
            timeout=5,
        ).json()["code"]
    elif case == "missing_cipher":
        got = api.code("POST", SEARCH, {"page_size": "10"}, {}, cipher=None)
    elif case == "cipher_on_authorization":
        got = api.code("GET", SHOPS)
    elif case == "foreign_cipher":
        other = env.sim.add_shop(name="Not authorized", region="US")
        got = api.code(
            "POST",
            SEARCH,
            {"page_size": "10"},
            {},
            cipher=env.sim.shop(other)["cipher"],
        )
    elif case == "missing_token":
        got = api.code("GET", SHOPS, cipher=None, token=None)
    else:
        got = api.code("GET", SHOPS, cipher=None, token="ROW_not-a-token")
    assert got == code
    if case == "cipher_on_authorization":
        assert "shop_cipher not required" in api.call("GET", SHOPS).json()["message"]


def test_expired_access_token_is_105002(env: Env) -> None:
    """After seven days (or expire_access_tokens) the access token answers 105002."""
    env.clock.advance(7 * 86400 - 1)
    assert env.api.code("GET", SHOPS, cipher=None) == 0
    env.clock.advance(1)
    assert env.api.code("GET", SHOPS, cipher=None) == 105002


def test_expire_access_tokens_control(env: Env) -> None:
    """expire_access_tokens() makes the next call answer 105002."""
    env.sim.expire_access_tokens()
    assert env.api.code("GET", SHOPS, cipher=None) == 105002


def test_missing_scope_is_105005(env: Env) -> None:
    """A token without seller.order.info cannot search orders."""
    access, _ = env.sim.seed_tokens(
        env.api.demo.app_key, [env.shop_id], scopes=["seller.authorization.info"]
    )
    assert env.api.code("POST", SEARCH, {"page_size": "5"}, {}, token=access) == 105005


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "code", "status"),
    [
        ("GET", "/order/202309/nothing", None, {}, 36009009, 404),
        ("GET", SEARCH, None, {}, 36009010, 405),
        ("POST", "/order/202401/orders/search", {}, {}, 36009014, 404),
        ("POST", SEARCH, {}, {"Content-Type": "text/plain"}, 36009023, 200),
    ],
)
def test_bad_requests_get_the_real_envelope(
    env: Env,
    method: str,
    path: str,
    body: Any,
    headers: dict[str, str],
    code: int,
    status: int,
) -> None:
    """Bad paths, methods, versions, content types answer an envelope, not a trace."""
    resp = env.api.call(method, path, {"page_size": "5"}, body, headers=headers)
    assert resp.status_code == status
    assert resp.json()["code"] == code
    assert resp.json()["request_id"]


def test_invalid_json_body_is_36009022(env: Env) -> None:
    """A body that is not JSON is refused with 36009022 once the sign checks out."""
    api = env.api
    params = {
        "app_key": api.demo.app_key,
        "timestamp": str(_now(env)),
        "shop_cipher": api.demo.shop_cipher,
        "page_size": "5",
    }
    params["sign"] = tts_sign(api.demo.app_secret, SEARCH, params, "{not json")
    resp = api.session.post(
        api.base_url + SEARCH,
        params=params,
        data=b"{not json",
        headers={
            "Content-Type": "application/json",
            "x-tts-access-token": api.token or "",
        },
        timeout=5,
    )
    assert resp.json()["code"] == 36009022


def test_rate_limit_answers_429_and_36009002(env: Env) -> None:
    """Past the QPS limit the sim answers HTTP 429, code 36009002 and Retry-After."""
    env.sim.set_rate_limit(2, retry_after=3)
    codes = [env.api.call("GET", SHOPS, cipher=None) for _ in range(3)]
    assert [r.status_code for r in codes] == [200, 200, 429]
    assert codes[2].json()["code"] == 36009002
    assert codes[2].headers["Retry-After"] == "3"
    env.clock.advance(1)
    assert env.api.code("GET", SHOPS, cipher=None) == 0


def test_injected_business_error(env: Env) -> None:
    """inject_error answers a checked call with the given code, once."""
    env.sim.inject_error("GET /authorization/.*", 36009003, http_status=500)
    first = env.api.call("GET", SHOPS, cipher=None)
    assert (first.status_code, first.json()["code"]) == (500, 36009003)
    assert env.api.code("GET", SHOPS, cipher=None) == 0


def test_inject_transient_answers_10006402_then_recovers(env: Env) -> None:
    """inject_transient answers "Internal error. Please try again" (10006402) once."""
    order_id = one_order(env)
    env.sim.inject_transient(r"GET /order/\{v\}/orders")
    first = env.api.call("GET", DETAIL, {"ids": order_id})
    assert (first.status_code, first.json()["code"]) == (200, 10006402)
    assert "try again" in first.json()["message"]
    data = env.api.ok("GET", DETAIL, {"ids": order_id})
    assert [o["id"] for o in data["orders"]] == [order_id]


def test_one_failing_order_fails_its_whole_detail_batch(env: Env) -> None:
    """fail_order_detail makes every batch holding that order fail; others still read."""
    bad, good = one_order(env), one_order(env)
    env.sim.fail_order_detail(bad, 12052900, "order data error")
    batch = env.api.call("GET", DETAIL, {"ids": f"{good},{bad}"}).json()
    assert (batch["code"], batch["message"]) == (12052900, "order data error")
    assert [o["id"] for o in env.api.ok("GET", DETAIL, {"ids": good})["orders"]] == [
        good
    ]
    env.sim.heal_order_detail(bad)
    assert env.api.code("GET", DETAIL, {"ids": f"{good},{bad}"}) == 0


def test_fault_plan_429_with_retry_after(env: Env) -> None:
    """A FaultPlan status fault reaches the client as 429 with Retry-After."""
    env.server.faults.next_calls(
        r"POST /order/202309/orders/search", Fault("status", status=429, retry_after=2)
    )
    resp = env.api.call("POST", SEARCH, {"page_size": "5"}, {})
    assert resp.status_code == 429
    assert resp.headers["Retry-After"] == "2"
    assert env.api.code("POST", SEARCH, {"page_size": "5"}, {}) == 0
    labels = [e.endpoint for e in env.server.journal.entries()]
    assert labels == ["POST /order/202309/orders/search"] * 2


# ---------------------------------------------------------------------- tokens


def _token_call(env: Env, path: str, **params: str) -> dict[str, Any]:
    query = {"app_key": env.api.demo.app_key, "app_secret": env.api.demo.app_secret}
    resp = env.api.session.get(
        env.server.url + path, params={**query, **params}, timeout=5
    )
    payload: dict[str, Any] = resp.json()
    return payload


def test_token_get_exchanges_a_code_once(env: Env) -> None:
    """An auth code gives tokens with absolute expiries; a second use is 36004004."""
    code = env.sim.issue_auth_code(env.api.demo.app_key, [env.shop_id])
    first = _token_call(
        env, "/api/v2/token/get", auth_code=code, grant_type="authorized_code"
    )
    assert first["code"] == 0
    data = first["data"]
    assert data["access_token_expire_in"] == _now(env) + 7 * 86400
    assert data["refresh_token_expire_in"] > data["access_token_expire_in"]
    assert data["user_type"] == 0
    assert data["seller_base_region"] == "US"
    assert "seller.return_refund.basic" in data["granted_scopes"]
    assert {"open_id", "seller_name", "refresh_token"} <= set(data)
    again = _token_call(
        env, "/api/v2/token/get", auth_code=code, grant_type="authorized_code"
    )
    assert again["code"] == 36004004
    env.api.token = data["access_token"]
    assert env.api.code("GET", SHOPS, cipher=None) == 0


def test_token_refresh_rotates_both_tokens(env: Env) -> None:
    """Refresh rotates both tokens; the old refresh and access tokens stop working."""
    old_access, old_refresh = env.api.token, env.api.demo.refresh_token
    fresh = _token_call(
        env,
        "/api/v2/token/refresh",
        refresh_token=old_refresh,
        grant_type="refresh_token",
    )
    assert fresh["code"] == 0
    assert fresh["data"]["access_token"] != old_access
    assert fresh["data"]["refresh_token"] != old_refresh
    again = _token_call(
        env,
        "/api/v2/token/refresh",
        refresh_token=old_refresh,
        grant_type="refresh_token",
    )
    assert again["code"] == 36004001
    assert "rt has expired" in again["message"]
    assert env.api.code("GET", SHOPS, cipher=None) == 105002
    env.api.token = fresh["data"]["access_token"]
    assert env.api.code("GET", SHOPS, cipher=None) == 0


def test_expired_refresh_token_and_bad_secret(env: Env) -> None:
    """An expired refresh token is 36004001; a wrong app_secret is 36009004."""
    wrong = _token_call(
        env,
        "/api/v2/token/refresh",
        refresh_token=env.api.demo.refresh_token,
        grant_type="refresh_token",
        app_secret="nope",
    )
    assert wrong["code"] == 36009004
    env.sim.expire_refresh_tokens()
    expired = _token_call(
        env,
        "/api/v2/token/refresh",
        refresh_token=env.api.demo.refresh_token,
        grant_type="refresh_token",
    )
    assert expired["code"] == 36004001


def test_uk_shop_reports_region_gb(server: SimulatorServer) -> None:
    """A UK shop reports region GB in shops and seller_base_region in tokens."""
    with make_env(server, "UK") as env:
        resp = env.api.call("GET", SHOPS, cipher=None)
        assert resp.json()["data"]["shops"][0]["region"] == "GB"
        code = env.sim.issue_auth_code(env.api.demo.app_key, [env.shop_id])
        data = _token_call(
            env, "/api/v2/token/get", auth_code=code, grant_type="authorized_code"
        )["data"]
        assert data["seller_base_region"] == "GB"


# ---------------------------------------------------------------------- orders


def test_order_lines_are_one_per_unit_without_quantity(env: Env) -> None:
    """Three units of a SKU come back as three lines, none with a quantity field."""
    order_id = one_order(env, quantity=3, tax="2.40")
    (order,) = env.api.ok("GET", DETAIL, {"ids": order_id})["orders"]
    assert order["id"] == order_id
    assert len(order["id"]) == 18
    assert len(order["line_items"]) == 3
    assert all("quantity" not in line for line in order["line_items"])
    assert {line["seller_sku"] for line in order["line_items"]} == {"MUG-1"}
    assert order["payment"]["total_amount"] == "37.40"
    assert order["payment"]["sub_total"] == "30.00"


def test_order_detail_takes_up_to_50_comma_joined_ids(env: Env) -> None:
    """ids takes 50 comma-joined ids, refuses 51 and refuses repeated ids keys."""
    ids = [one_order(env) for _ in range(2)]
    data = env.api.ok("GET", "/order/202507/orders", {"ids": ",".join(ids)})
    assert [o["id"] for o in data["orders"]] == ids
    many = ids + [str(576000000000000000 + n) for n in range(49)]
    assert env.api.code("GET", DETAIL, {"ids": ",".join(many[:50])}) == 0
    assert env.api.code("GET", DETAIL, {"ids": ",".join(many[:51])}) == 36009004
    api = env.api
    pairs = [
        ("app_key", api.demo.app_key),
        ("timestamp", str(_now(env))),
        ("shop_cipher", api.demo.shop_cipher),
        ("ids", ids[0]),
        ("ids", ids[1]),
    ]
    sign = tts_sign_pairs(api.demo.app_secret, DETAIL, pairs, None)
    resp = api.session.get(
        api.base_url + DETAIL,
        params=[*pairs, ("sign", sign)],
        headers={"x-tts-access-token": api.token or ""},
        timeout=5,
    )
    assert resp.json()["code"] == 36009004
    assert "comma" in resp.json()["message"]


def _all_pages(
    env: Env, params: dict[str, str], body: dict[str, Any]
) -> tuple[list[dict[str, Any]], list[str]]:
    items: list[dict[str, Any]] = []
    tokens: list[str] = []
    token = ""
    while True:
        query = dict(params)
        if token:
            query["page_token"] = token
        data = env.api.ok("POST", SEARCH, query, body)
        items.extend(data["orders"])
        token = data.get("next_page_token") or ""
        if not token:
            return items, tokens
        tokens.append(token)


def test_page_tokens_hold_plus_slash_equals_and_round_trip(env: Env) -> None:
    """Page tokens carry + / = and, percent-encoded, walk every order exactly once."""
    created = []
    for _ in range(7):
        created.append(one_order(env))
        env.clock.advance(10)
    items, tokens = _all_pages(env, {"page_size": "2"}, {})
    assert len(tokens) == 3
    assert all({"+", "/", "="} <= set(t) for t in tokens)
    assert [o["id"] for o in items] == list(reversed(created))  # create_time DESC
    data = env.api.ok("POST", SEARCH, {"page_size": "2"}, {})
    assert data["total_count"] == 7


def test_unencoded_page_token_fails_the_sign(env: Env) -> None:
    """A token sent raw (its + read back as a space) no longer matches its sign."""
    for _ in range(3):
        one_order(env)
    token = env.api.ok("POST", SEARCH, {"page_size": "1"}, {})["next_page_token"]
    api = env.api
    params = {
        "app_key": api.demo.app_key,
        "timestamp": str(_now(env)),
        "shop_cipher": api.demo.shop_cipher,
        "page_size": "1",
        "page_token": token,
    }
    params["sign"] = tts_sign(api.demo.app_secret, SEARCH, params, "{}")
    raw_query = "&".join(
        f"{k}={v}" if k == "page_token" else f"{k}={quote(v, safe='')}"
        for k, v in params.items()
    )
    resp = api.session.post(
        f"{api.base_url}{SEARCH}?{raw_query}",
        data=b"{}",
        headers={
            "Content-Type": "application/json",
            "x-tts-access-token": api.token or "",
        },
        timeout=5,
    )
    assert resp.status_code == 401
    assert resp.json()["code"] == 106001


def test_search_filters_and_sorting(env: Env) -> None:
    """Status, update_time window (ge in, lt out) and sort order all apply."""
    start = _now(env)
    early = one_order(env)
    env.clock.advance(60)
    middle = one_order(env, status="UNPAID")
    env.clock.advance(60)
    late = one_order(env)
    env.sim.buyer_cancel(late, pending=True)
    asc = {"page_size": "10", "sort_field": "update_time", "sort_order": "ASC"}
    window = {"update_time_ge": start, "update_time_lt": start + 120}
    got = env.api.ok("POST", SEARCH, asc, window)["orders"]
    assert [o["id"] for o in got] == [early, middle]
    unpaid = env.api.ok("POST", SEARCH, asc, {"order_status": "UNPAID"})["orders"]
    assert [o["id"] for o in unpaid] == [middle]
    asking = env.api.ok("POST", SEARCH, asc, {"is_buyer_request_cancel": True})[
        "orders"
    ]
    assert [o["id"] for o in asking] == [late]
    assert asking[0]["request_cancel_time"] == start + 120
    desc = env.api.ok(
        "POST", SEARCH, {"page_size": "10", "sort_field": "update_time"}, {}
    )
    assert [o["id"] for o in desc["orders"]] == [late, middle, early]


@pytest.mark.parametrize(
    ("params", "body"),
    [
        ({}, {}),
        ({"page_size": "0"}, {}),
        ({"page_size": "101"}, {}),
        ({"page_size": "10", "sort_field": "id"}, {}),
        ({"page_size": "10", "sort_order": "UP"}, {}),
        ({"page_size": "10"}, {"order_status": ["CANCELLED", "UNPAID"]}),
        ({"page_size": "10"}, {"update_time_ge": "yesterday"}),
        ({"page_size": "10", "page_token": "garbage"}, {}),
    ],
)
def test_search_parameter_errors_are_36009004(
    env: Env, params: dict[str, str], body: dict[str, Any]
) -> None:
    """page_size outside 1-100, bad sorting, two statuses, a bad token: 36009004."""
    assert env.api.code("POST", SEARCH, params, body) == 36009004


def test_page_token_is_bound_to_its_query(env: Env) -> None:
    """A token reused with other filters is refused."""
    for _ in range(3):
        one_order(env)
    token = env.api.ok("POST", SEARCH, {"page_size": "1"}, {})["next_page_token"]
    code = env.api.code(
        "POST",
        SEARCH,
        {"page_size": "1", "page_token": token},
        {"order_status": "UNPAID"},
    )
    assert code == 36009004


def test_data_faults_repeat_items_and_swap_neighbours(env: Env) -> None:
    """Seeded data faults repeat an item across pages and break the sort order."""
    for _ in range(12):
        one_order(env)
        env.clock.advance(1)
    env.sim.set_data_faults(duplicate_rate=1.0, out_of_order_rate=0.5, seed=3)
    items, _ = _all_pages(env, {"page_size": "4", "sort_order": "ASC"}, {})
    ids = [o["id"] for o in items]
    assert len(ids) > len(set(ids)) == 12
    times = [o["create_time"] for o in items]
    assert times != sorted(times)


def test_backdated_order_lands_behind_the_window(env: Env) -> None:
    """backdate() moves update_time back so a poll window that passed it misses it."""
    order_id = one_order(env)
    now = _now(env)
    env.sim.backdate(order_id, 600)
    window = {"update_time_ge": now - 300, "update_time_lt": now + 1}
    assert env.api.ok("POST", SEARCH, {"page_size": "10"}, window)["orders"] == []
    assert env.sim.order(order_id)["update_time"] == now - 600
    late = one_order(env, update_time=now - 900)
    assert env.sim.order(late)["update_time"] == now - 900
