"""Order center security: authentication everywhere, sessions, CSRF, throttling, headers."""

from __future__ import annotations

import re
from collections.abc import MutableMapping
from contextlib import closing
from datetime import timedelta
from typing import Any

import pytest

from cancelsync.clock import FakeClock
from cancelsync.web import views
from cancelsync.web.auth import SESSION_COOKIE, Sessions, Throttle

from .conftest import BEARER, TIKTOK_ORDER, TOKEN, Client, Site, csrf_of

LOGS = list[MutableMapping[str, Any]]


def every_route(site: Site) -> list[tuple[str, str]]:
    """(method, path) of every route, its parameters filled in."""
    params = {"action_id": str(site.ids["held"]), "order_ref": TIKTOK_ORDER}
    routes = []
    for route in views.ROUTES:
        path = re.sub(
            r"\(\?P<(\w+)>[^)]*\)", lambda m: params[m[1]], route.pattern.pattern
        )
        routes.append((route.method, path.strip("^$")))
    return routes


def test_every_route_needs_authentication(site: Site) -> None:
    """Without a token or session, pages send to sign-in, the API says 401, nothing changes."""
    client = site.client()
    before = site.dump()
    routes = every_route(site)
    assert len(routes) == len(views.ROUTES) >= 12
    for method, path in routes:
        reply = client.request(method, path, form={} if method == "POST" else None)
        if method == "GET" and not path.startswith("/api/"):
            assert reply.status == 303, path
            assert reply.header("Location") == "/login?next=" + path.replace("/", "%2F")
        else:
            assert reply.status == 401, path
            assert reply.header("WWW-Authenticate") == 'Bearer realm="cancelsync"'
        assert TIKTOK_ORDER not in reply.text or path.endswith(TIKTOK_ORDER)
    assert site.dump() == before


def test_a_wrong_bearer_or_cookie_is_refused(site: Site) -> None:
    """A wrong bearer token, another scheme or a forged session cookie gets nothing."""
    client = site.client()
    assert (
        client.get("/api/stores", headers={"Authorization": "Bearer nope"}).status
        == 401
    )
    assert (
        client.get("/api/stores", headers={"Authorization": f"Basic {TOKEN}"}).status
        == 401
    )
    assert client.get("/api/stores", headers=BEARER).status == 200
    client.cookies[SESSION_COOKIE] = "forged.0000"
    assert client.get("/").status == 303
    other = Sessions(site.clock)  # a session signed by another process's key
    cookie, _ = other.create()
    client.cookies[SESSION_COOKIE] = cookie
    assert client.get("/api/stores").status == 401


def test_sign_in_sets_a_strict_httponly_expiring_cookie(site: Site) -> None:
    """The form signs in once: HttpOnly, SameSite=Strict, Max-Age; Secure only over HTTPS."""
    client = site.client()
    reply = client.sign_in(next_path="/activity")
    assert reply.status == 303
    assert reply.header("Location") == "/activity"
    (cookie,) = [c for c in reply.all("Set-Cookie") if c.startswith(SESSION_COOKIE)]
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert "Max-Age=28800" in cookie
    assert "Secure" not in cookie
    assert TOKEN not in cookie
    assert client.get("/").status == 200


@pytest.mark.parametrize(
    ("trust_proxy", "secure"),
    [(True, True), (False, False)],
    ids=["loopback", "exposed"],
)
def test_forwarded_proto_is_believed_only_from_a_loopback_listener(
    site: Site, trust_proxy: bool, secure: bool
) -> None:
    """X-Forwarded-Proto: https marks cookies Secure only when the listener is loopback."""
    site.app.trust_proxy = trust_proxy
    client = site.client()
    form = client.get("/login", headers={"X-Forwarded-Proto": "https"})
    assert ("Secure" in form.header("Set-Cookie")) is secure  # type: ignore[operator]
    reply = client.post(
        "/login", headers={"X-Forwarded-Proto": "https"},
        form={"csrf": csrf_of(form.text), "token": TOKEN},
    )  # fmt: skip
    assert reply.status == 303
    (cookie,) = [c for c in reply.all("Set-Cookie") if c.startswith(SESSION_COOKIE)]
    assert ("; Secure" in cookie) is secure


def test_sign_in_needs_the_forms_own_csrf_value(site: Site) -> None:
    """A sign-in POST without the form's cookie-bound value is refused, token or not."""
    client = site.client()
    reply = client.post("/login", form={"csrf": "guess", "token": TOKEN})
    assert reply.status == 403
    assert SESSION_COOKIE not in client.cookies
    client.get("/login")
    reply = client.post("/login", form={"csrf": "guess", "token": TOKEN})
    assert reply.status == 403
    assert SESSION_COOKIE not in client.cookies


def test_failed_sign_ins_are_throttled_and_logged_without_the_value(
    site: Site, logs: LOGS
) -> None:
    """Five wrong tokens from one client, then 429 even for the right one; logs hold no value."""
    client = site.client(remote_addr="203.0.113.9")
    for n in range(5):
        reply = client.sign_in(token=f"wrong-guess-{n}")
        assert reply.status == 401
        assert "not the order center" in reply.text
    reply = client.sign_in()
    assert reply.status == 429
    assert SESSION_COOKIE not in client.cookies
    bearer = client.get("/api/stores", headers=BEARER)
    assert bearer.status == 429
    assert bearer.header("Retry-After") == "60"
    assert site.client(remote_addr="198.51.100.7").sign_in().status == 303
    failures = [e for e in logs if e["event"] == "web.signin_failed"]
    assert len(failures) == 5
    assert failures[-1]["failures_in_window"] == 5
    assert failures[0]["client"] == "203.0.113.9"
    assert "wrong-guess" not in repr(logs)
    assert TOKEN not in repr(logs)
    site.clock.advance(61)
    assert client.sign_in().status == 303


def test_throttle_counts_every_client_together_too() -> None:
    """Past the overall limit nobody may try until the window has passed."""
    clock = FakeClock()
    throttle = Throttle(clock, per_client=5, overall=3)
    for n in range(3):
        assert throttle.wait_seconds(f"10.0.0.{n}") == 0
        throttle.failed(f"10.0.0.{n}")
    assert throttle.wait_seconds("10.0.0.99") == 60
    clock.advance(30)
    assert throttle.wait_seconds("10.0.0.99") == 30
    clock.advance(31)
    assert throttle.wait_seconds("10.0.0.99") == 0


def test_forwarded_for_names_the_client_only_behind_a_loopback_listener(
    site: Site, logs: LOGS
) -> None:
    """The throttle keys on the proxy's X-Forwarded-For entry only when it is trusted."""
    client = site.client()
    headers = {"X-Forwarded-For": "1.2.3.4, 198.51.100.20", "Authorization": "Bearer x"}
    client.get("/api/stores", headers=headers)
    site.app.trust_proxy = False
    client.get("/api/stores", headers=headers)
    assert [e["client"] for e in logs if e["event"] == "web.signin_failed"] == [
        "198.51.100.20", "127.0.0.1",
    ]  # fmt: skip


def test_sessions_expire(site: Site, signed_in: Client) -> None:
    """A session ends after 8 hours: the next page asks to sign in again."""
    assert signed_in.get("/").status == 200
    site.clock.advance(timedelta(hours=8).total_seconds())
    reply = signed_in.get("/")
    assert reply.status == 303
    assert reply.header("Location") == "/login?next=%2F"


def test_sign_out_ends_the_session(signed_in: Client) -> None:
    """Sign out (a POST with the CSRF token) drops the session server-side."""
    cookie = signed_in.cookies[SESSION_COOKIE]
    assert signed_in.get("/logout").status == 405
    reply = signed_in.post("/logout", form={"csrf": signed_in.csrf()})
    assert reply.status == 303
    assert SESSION_COOKIE not in signed_in.cookies
    signed_in.cookies[SESSION_COOKIE] = cookie  # replayed: gone on the server too
    assert signed_in.get("/").status == 303


def test_csrf_token_is_required_for_cookie_posts(site: Site, signed_in: Client) -> None:
    """A session POST without (or with a wrong) CSRF token is refused and changes nothing."""
    held = site.ids["held"]
    before = site.dump()
    for form in ({"note": "x"}, {"note": "x", "csrf": "wrong"}):
        reply = signed_in.post(f"/actions/{held}/resolve", form=form)
        assert reply.status == 403
        assert "reload the page" in reply.text
    reply = signed_in.post(f"/api/actions/{held}/retry", json_body={})
    assert reply.status == 403
    assert site.dump() == before
    reply = signed_in.post(
        f"/api/actions/{held}/retry", json_body={},
        headers={"X-CSRF-Token": signed_in.csrf()},
    )  # fmt: skip
    assert reply.status == 200


def test_bearer_posts_need_no_csrf_token(site: Site) -> None:
    """Scripts resolve with the bearer header alone (a browser never sends it by itself)."""
    reply = site.client().post(
        f"/api/actions/{site.ids['held']}/resolve", headers=BEARER,
        json_body={"note": "refunded in the admin"},
    )  # fmt: skip
    assert reply.status == 200
    assert reply.json()["outcome"] == "resolved"


def test_next_never_leaves_the_site(site: Site) -> None:
    """After sign-in, ``next`` goes to a local path only (no open redirect)."""
    for target, expected in (
        ("//evil.example/x", "/"), ("https://evil.example/", "/"), ("/\\evil", "/"),
        ("/activity?page=2", "/activity?page=2"),
    ):  # fmt: skip
        assert site.client().sign_in(next_path=target).header("Location") == expected


@pytest.mark.parametrize(
    ("method", "path", "auth"),
    [
        ("GET", "/", True), ("GET", "/attention", True), ("GET", "/api/stores", True),
        ("GET", "/api/orders/unknown", True), ("GET", "/nope", True),
        ("GET", "/login", False), ("GET", "/", False), ("GET", "/api/stores", False),
        ("POST", "/", True),
    ],
)  # fmt: skip
def test_every_reply_carries_the_security_headers(
    site: Site, method: str, path: str, auth: bool
) -> None:
    """CSP without script, no framing, no referrer, nosniff and no-store on every reply."""
    reply = site.client().request(method, path, headers=BEARER if auth else None)
    csp = reply.header("Content-Security-Policy") or ""
    assert "default-src 'self'" in csp
    assert "script-src 'none'" in csp
    assert "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert reply.header("X-Frame-Options") == "DENY"
    assert reply.header("Referrer-Policy") == "no-referrer"
    assert reply.header("X-Content-Type-Options") == "nosniff"
    assert reply.header("Cache-Control") == "no-store"


def test_stylesheet_is_public_and_cacheable(site: Site) -> None:
    """The one static file needs no sign-in (it holds no data) and may be cached."""
    reply = site.client().get("/static/order-center.css")
    assert reply.status == 200
    assert reply.header("Content-Type") == "text/css; charset=utf-8"
    assert reply.header("Cache-Control") == "max-age=3600"
    assert b"order center" in reply.body


def test_no_secret_is_ever_rendered(site: Site, signed_in: Client) -> None:
    """No page or API reply holds the token or a configured secret, even one stored in a
    reason: the reply is scrubbed."""
    with closing(site.store()) as store:
        store.ledger.update("key:held", site.clock.now(),
                            reason=f"Magento said: bad secret cs-web-secret-value {TOKEN}")  # fmt: skip
    secrets = [TOKEN, *site.config.secrets(), "access-token-web-value"]
    pages = ["/", "/attention", "/activity", f"/order?q={TIKTOK_ORDER}", "/activity.csv",
             "/api/stores", "/api/attention", f"/api/orders/{TIKTOK_ORDER}", "/login"]  # fmt: skip
    for path in pages:
        text = signed_in.get(path).text
        for secret in secrets:
            assert secret not in text, (path, secret)
    assert "Magento said: bad secret ***" in signed_in.get("/attention").text


def test_oversized_or_odd_bodies_are_refused(site: Site) -> None:
    """A body over 64 KiB is 413, a body that is neither a form nor JSON is 415."""
    client = site.client()
    path = f"/api/actions/{site.ids['held']}/resolve"
    assert client.post(path, headers=BEARER, body=b"x" * 70_000).status == 413
    odd = {**BEARER, "Content-Type": "text/xml"}
    assert client.post(path, headers=odd, body=b"<note/>").status == 415
    bad = {**BEARER, "Content-Type": "application/json"}
    assert client.post(path, headers=bad, body=b"{nope").status == 400
