"""Fixtures for the order center: a seeded database, the WSGI app and a cookie-keeping client.

The app is called in-process through WSGI (no socket); ``Client`` keeps cookies like a
browser does and can sign in through the form.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from cancelsync.clock import FakeClock
from cancelsync.config import Config, load_config
from cancelsync.log import Redactor
from cancelsync.models import TokenPair
from cancelsync.store import Link, Store
from cancelsync.web.app import OrderCenter

TOKEN = "order-center-test-token-0123456789"
SCOPE = "shop:7495000000000000001"
HOSTILE = '<script>alert("x")</script>'
HOSTILE_SKU = 'SKU-"><img src=x onerror=alert(1)>'
TIKTOK_ORDER = "576000000000000001"
MAGENTO_ORDER = "000000042"

CONFIG = f"""\
[worker]
database = "cancelsync.db"
web_listen = "127.0.0.1:8788"
web_token = "{TOKEN}"
magento_admin_order_url = "https://magento.example.com/admin/sales/order/view/order_id/{{magento_entity_id}}/"
tiktok_order_url = "https://seller-us.tiktok.com/order/detail?order_no={{tiktok_order_id}}&shop={{tiktok_shop_id}}"

[magento]
base_url = "https://magento.test"
consumer_key = "ck-web"
consumer_secret = "cs-web-secret-value"
access_token = "at-web-token-value"
access_token_secret = "ats-web-secret-value"

[[stores]]
name = "us-main"
app_key = "app-key-web"
app_secret = "app-secret-web-value"
shop_id = "7495000000000000001"

[[stores]]
name = "uk-main"
app_key = "app-key-web"
app_secret = "app-secret-web-value"
shop_id = "7495000000000000002"
"""


def seed(store: Store, clock: FakeClock) -> dict[str, int]:
    """Ledger rows in every state (two needing attention, with hostile text), a link,
    a timeline, a cycle and a token; returns the action ids by name."""
    now = clock.now() - timedelta(hours=3)
    common: dict[str, Any] = {"scope": SCOPE, "store_name": "us-main"}
    ids: dict[str, int] = {}

    def row(name: str, state: str, direction: str, action: str, **kw: Any) -> None:
        entry = store.ledger.begin(f"key:{name}", direction=direction, action=action,
                                   now=now, state=state, **common, **kw)  # fmt: skip
        ids[name] = entry.action_id

    row("held", "needs_attention", "tiktok_to_magento", "magento_refund",
        tiktok_order_id=TIKTOK_ORDER, magento_entity_id=42,
        magento_increment_id=MAGENTO_ORDER,
        reason=f"the Magento order is on hold {HOSTILE}", reason_code="blocked")  # fmt: skip
    row("shipped", "needs_attention", "magento_to_tiktok", "tiktok_cancel",
        tiktok_order_id="576000000000000002", magento_entity_id=43,
        magento_increment_id="000000043",
        reason=f"order IN_TRANSIT; line {HOSTILE_SKU}", reason_code="shipped")  # fmt: skip
    row("done", "done", "tiktok_to_magento", "magento_refund",
        tiktok_order_id="576000000000000003", magento_increment_id="=HYPERLINK(1)",
        reason="refunded")  # fmt: skip
    row("skipped", "skipped", "magento_to_tiktok", "none",
        tiktok_order_id="576000000000000004", reason="not a TikTok order")  # fmt: skip
    row("failed", "failed", "tiktok_to_magento", "magento_refund",
        tiktok_order_id="576000000000000005", reason="503 from Magento")  # fmt: skip
    store.links.save(Link(TIKTOK_ORDER, SCOPE, 42, MAGENTO_ORDER, 1), now)
    store.timeline.add(
        at=now, scope=SCOPE, kind="attention", action_id=ids["held"],
        tiktok_order_id=TIKTOK_ORDER, magento_entity_id=42,
        magento_increment_id=MAGENTO_ORDER, message=f"needs attention: {HOSTILE}",
    )  # fmt: skip
    store.cycles.record(
        run_id="run-1", scope=SCOPE, store_name="us-main", started_at=now,
        finished_at=now + timedelta(seconds=2), outcome="ok", counts={"done": 1},
    )  # fmt: skip
    store.cursors.advance(
        SCOPE,
        "tiktok.cancellations",
        int((now - timedelta(minutes=5)).timestamp()),
        now,
    )
    expires = int((clock.now() + timedelta(days=6)).timestamp())
    store.tokens.save(
        SCOPE, TokenPair("access-token-web-value", "refresh-token-web-value", expires),
        None, now,
    )  # fmt: skip
    return ids


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        found = [v for k, v in self.headers if k.lower() == name.lower()]
        return found[-1] if found else None

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


@dataclass
class Client:
    """Calls the WSGI app like a browser: cookies kept, forms posted."""

    app: OrderCenter
    cookies: dict[str, str] = field(default_factory=dict)
    remote_addr: str = "127.0.0.1"

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        form: dict[str, str] | None = None,
        json_body: Any = None,
        body: bytes | None = None,
    ) -> Reply:
        raw_path, _, query = path.partition("?")
        environ: dict[str, Any] = {
            "REQUEST_METHOD": method, "PATH_INFO": raw_path, "QUERY_STRING": query,
            "REMOTE_ADDR": self.remote_addr, "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8788", "SERVER_PROTOCOL": "HTTP/1.1",
            "wsgi.url_scheme": "http", "wsgi.errors": io.StringIO(),
        }  # fmt: skip
        if form is not None:
            body = urlencode(form).encode()
            environ["CONTENT_TYPE"] = "application/x-www-form-urlencoded"
        elif json_body is not None:
            body = json.dumps(json_body).encode()
            environ["CONTENT_TYPE"] = "application/json"
        environ["wsgi.input"] = io.BytesIO(body or b"")
        environ["CONTENT_LENGTH"] = str(len(body or b""))
        if self.cookies:
            environ["HTTP_COOKIE"] = "; ".join(
                f"{k}={v}" for k, v in self.cookies.items()
            )
        for key, value in (headers or {}).items():
            name = key.upper().replace("-", "_")
            environ[name if name == "CONTENT_TYPE" else f"HTTP_{name}"] = value
        seen: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]]) -> None:
            seen["status"], seen["headers"] = int(status.split()[0]), headers

        data = b"".join(self.app(environ, start_response))
        reply = Reply(seen["status"], seen["headers"], data)
        for cookie in reply.all("Set-Cookie"):
            name, _, rest = cookie.partition("=")
            value = rest.split(";")[0]
            if "Max-Age=0" in cookie:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        return reply

    def get(self, path: str, **kw: Any) -> Reply:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Reply:
        return self.request("POST", path, **kw)

    def sign_in(self, token: str = TOKEN, next_path: str = "/") -> Reply:
        form = self.get("/login")
        return self.post("/login", form={"csrf": csrf_of(form.text), "token": token,
                                         "next": next_path})  # fmt: skip

    def csrf(self) -> str:
        return csrf_of(self.get("/attention").text)


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF field on the page"
    return match.group(1)


@dataclass
class Site:
    config: Config
    app: OrderCenter
    clock: FakeClock
    ids: dict[str, int]
    database: Path

    def client(self, **kw: Any) -> Client:
        return Client(self.app, **kw)

    def store(self) -> Store:
        """A separate connection, as the worker has."""
        return Store.open(self.database)

    def dump(self) -> list[str]:
        """The whole database as SQL, to compare before and after."""
        store = self.store()
        try:
            return list(store.db.conn.iterdump())
        finally:
            store.close()


@pytest.fixture
def site(tmp_path: Path, clock: FakeClock) -> Iterator[Site]:
    """The order center on a seeded database (in-process WSGI, a fake clock)."""
    path = tmp_path / "cancelsync.toml"
    path.write_text(CONFIG, encoding="utf-8")
    config = load_config(path, environ={})
    with closing(Store.open(config.worker.database)) as store:
        ids = seed(store, clock)
    app_store = Store.open(config.worker.database)
    app = OrderCenter(config, app_store, token=TOKEN, clock=clock,
                      redactor=Redactor(config.secrets()))  # fmt: skip
    yield Site(config, app, clock, ids, config.worker.database)
    app_store.close()


@pytest.fixture
def signed_in(site: Site) -> Client:
    """A client signed in through the form."""
    client = site.client()
    assert client.sign_in().status == 303
    return client


BEARER = {"Authorization": f"Bearer {TOKEN}"}
