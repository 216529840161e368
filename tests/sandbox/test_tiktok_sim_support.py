"""Helpers for the TikTok simulator tests: an independent signer and a tiny client.

The signer is written from reference §2 on purpose, apart from the simulator's verifier
and from any cancelsync client, so the tests check the simulator against the reference.
This module holds no tests; pytest collects it only because of its name.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests

from cancelsync.clock import FakeClock, to_epoch
from cancelsync.sandbox.common import FaultPlan, SimulatorServer
from cancelsync.sandbox.tiktok import DemoSetup, TikTokSimulator

START = datetime(2026, 11, 26, 10, 30, 0, tzinfo=UTC)
TIMEOUT = 5


def tts_sign(
    secret: str, path: str, params: Mapping[str, str], body: str | None
) -> str:
    """Reference §2 step by step: sorted k+v (minus sign/access_token), path in
    front, body after, wrapped in the secret, HMAC-SHA256 keyed by it, lower hex."""
    return tts_sign_pairs(secret, path, list(params.items()), body)


def tts_sign_pairs(
    secret: str, path: str, pairs: Sequence[tuple[str, str]], body: str | None
) -> str:
    """``tts_sign`` over raw pairs; a repeated key keeps its URL order."""
    kept = sorted(
        ((k, v) for k, v in pairs if k not in ("sign", "access_token")),
        key=lambda kv: kv[0],
    )
    plain = path + "".join(k + v for k, v in kept) + (body or "")
    wrapped = secret + plain + secret
    return hmac.new(secret.encode(), wrapped.encode(), hashlib.sha256).hexdigest()


def tts_webhook_sign(app_key: str, secret: str, body: str) -> str:
    """Reference §7: HMAC-SHA256 keyed by the secret over app_key + raw body."""
    return hmac.new(
        secret.encode(), (app_key + body).encode(), hashlib.sha256
    ).hexdigest()


@dataclass
class Api:
    """Signs and sends calls the way the reference says a client must."""

    session: requests.Session
    base_url: str
    clock: FakeClock
    demo: DemoSetup
    token: str | None = None
    cipher: str | None = None
    sent: list[str] = field(default_factory=list)

    def call(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        *,
        cipher: str | bool | None = True,
        token: str | bool | None = True,
        skew: int = 0,
        secret: str | None = None,
        extra: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """One signed call; ``cipher``/``token`` True means the defaults, None omits."""
        query = {
            "app_key": self.demo.app_key,
            "timestamp": str(to_epoch(self.clock.now()) + skew),
        }
        shop_cipher = self.cipher if cipher is True else cipher
        if shop_cipher:
            query["shop_cipher"] = str(shop_cipher)
        query.update(params or {})
        raw = None if body is None else json.dumps(body, separators=(",", ":"))
        query["sign"] = tts_sign(secret or self.demo.app_secret, path, query, raw)
        query.update(extra or {})  # added after signing (e.g. access_token: not signed)
        hdrs = {"Content-Type": "application/json"}
        access = self.token if token is True else token
        if access:
            hdrs["x-tts-access-token"] = str(access)
        hdrs.update(headers or {})
        return self.session.request(
            method,
            self.base_url + path,
            params=query,
            data=raw.encode() if raw is not None else None,
            headers=hdrs,
            timeout=TIMEOUT,
        )

    def ok(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None = None,
        body: Any = None,
    ) -> dict[str, Any]:
        """A call that must succeed; returns ``data``."""
        resp = self.call(method, path, params, body)
        payload = resp.json()
        assert resp.status_code == 200, payload
        assert payload["code"] == 0, payload
        data: dict[str, Any] = payload["data"]
        return data

    def code(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        **kwargs: Any,
    ) -> int:
        """The envelope's code of a call."""
        code: int = self.call(method, path, params, body, **kwargs).json()["code"]
        return code


@dataclass
class Env:
    """A simulator on loopback with the demo shop authorized."""

    sim: TikTokSimulator
    clock: FakeClock
    server: SimulatorServer
    api: Api

    @property
    def shop_id(self) -> str:
        return self.api.demo.shop_id


@contextmanager
def idle_server() -> Iterator[SimulatorServer]:
    """One loopback server for a whole test module.

    Stopping a server waits out serve_forever's 0.5 s poll, so tests share one and
    ``make_env`` swaps a fresh simulator, fault plan and journal into it per test.
    """
    server = SimulatorServer(TikTokSimulator(FakeClock(START)))
    # Headers and body leave in two writes; with Nagle on, each reply waits ~40 ms for
    # a delayed ACK. (Worth moving into common.SimulatorServer's handler.)
    handler = server._httpd.RequestHandlerClass
    handler.disable_nagle_algorithm = True  # type: ignore[attr-defined]
    with server:
        yield server


@contextmanager
def make_env(
    server: SimulatorServer, region: str = "US", **sim_kwargs: Any
) -> Iterator[Env]:
    """A fresh seeded simulator with the demo shop, served by ``server``."""
    clock = FakeClock(START)
    sim = TikTokSimulator(clock, seed=7, **sim_kwargs)
    demo = sim.seed_demo(region)
    server.simulator = sim
    server.faults = FaultPlan(seed=1)
    server.journal.clear()
    with requests.Session() as session:
        api = Api(session, server.url, clock, demo, demo.access_token, demo.shop_cipher)
        yield Env(sim, clock, server, api)


def one_order(
    env: Env, quantity: int = 1, status: str = "AWAITING_SHIPMENT", **kwargs: Any
) -> str:
    """A one-SKU order of ``quantity`` units at 10.00 with 5.00 shipping."""
    return env.sim.create_order(
        env.shop_id,
        [
            {
                "sku_id": "1729000000000000001",
                "seller_sku": "MUG-1",
                "price": "10.00",
                "quantity": quantity,
            }
        ],
        status=status,
        shipping_fee="5.00",
        **kwargs,
    )
