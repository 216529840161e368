"""The TikTok Shop Partner API simulator: request checks and the reply envelope.

``TikTokSimulator`` implements ``cancelsync.sandbox.common.Simulator``. One object
serves both TikTok hosts (the token host's ``/api/v2/token/*`` paths and the API host's
``/{module}/{version}/...`` paths), so point both base URLs at one ``SimulatorServer``.
Every API-host call is checked like the real platform does (reference §1, §2, §6):
content type, app_key, timestamp window, sign, access token, scope, shop_cipher; then a
handler in ``routes`` or ``cancels`` acts on the ``World``. Scenario methods (seeding
shops, orders, buyer and system cancellations, faults) come from ``ScenarioMixin``.
"""

from __future__ import annotations

import random
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from cancelsync.clock import Clock, SystemClock, to_epoch
from cancelsync.sandbox.common import SimRequest, SimResponse
from cancelsync.sandbox.tiktok import cancels, routes
from cancelsync.sandbox.tiktok import errors as E
from cancelsync.sandbox.tiktok.consent import CONSENT_PATH, consent_page
from cancelsync.sandbox.tiktok.errors import ApiError
from cancelsync.sandbox.tiktok.paging import DataFaults
from cancelsync.sandbox.tiktok.routing import Route, label_for, match
from cancelsync.sandbox.tiktok.scenario import ScenarioMixin
from cancelsync.sandbox.tiktok.signing import verify_sign
from cancelsync.sandbox.tiktok.state import App, Grant, Shop
from cancelsync.sandbox.tiktok.webhooks import EVENT_TYPES, Subscription, WebhookSender
from cancelsync.sandbox.tiktok.world import Timing, World

MAX_PAST_SKEW = 300  # a timestamp older than 5 min is refused
MAX_FUTURE_SKEW = 30  # ... and so is one more than 30 s ahead


@dataclass
class _Call:
    """A checked API-host request."""

    request: SimRequest
    route: Route
    version: str
    path_id: str
    query: dict[str, str]
    app: App
    grant: Grant
    shop: Shop | None


@dataclass
class _InjectedError:
    pattern: re.Pattern[str]
    error: ApiError
    remaining: int


@dataclass
class _RateLimit:
    qps: int
    retry_after: float | None
    seen: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)


class TikTokSimulator(ScenarioMixin):
    """An in-memory TikTok Shop (token host + API host) behind ``handle()``.

    Args:
        clock: where "now" comes from (timestamp window, token expiry, deadlines).
        seed: seeds ids, tokens and request ids, so runs are reproducible.
        refund_delay_seconds: how long a cancellation stays SUCCESS before it turns
            COMPLETE (0: complete at once).
        buyer_request_window_seconds: when a pending buyer request is auto-approved.
        access_token_ttl_seconds: access token life (about 7 days at TikTok).
    """

    def __init__(
        self,
        clock: Clock | None = None,
        *,
        seed: int = 0,
        refund_delay_seconds: int = 0,
        buyer_request_window_seconds: int = 86400,
        access_token_ttl_seconds: int = 7 * 86400,
    ) -> None:
        timing = Timing(
            access_token_ttl=access_token_ttl_seconds,
            buyer_request_window=buyer_request_window_seconds,
            refund_delay=refund_delay_seconds,
        )
        self.clock: Clock = clock or SystemClock()
        self._lock = threading.RLock()
        self._world = World(self.clock, seed, timing)
        self.webhooks = WebhookSender()
        self._world.listeners.append(self.webhooks.on_change)
        self._rid_rng = random.Random(seed + 1)
        self._faults = DataFaults()
        self._injected: list[_InjectedError] = []
        self._rate_limit: _RateLimit | None = None

    # ------------------------------------------------------------------ Simulator

    def endpoint_name(self, request: SimRequest) -> str:
        """A stable label such as ``"POST /return_refund/{v}/cancellations"``."""
        return label_for(request)

    def handle(self, request: SimRequest) -> SimResponse:
        """Answer one request in TikTok's envelope; never raises."""
        if request.method == "GET" and request.path == CONSENT_PATH:
            return self._consent(request)
        with self._lock:
            try:
                self._world.tick()
                route, version, path_id = match(request)
                self._check_rate(request, route)
                if route.kind == "token":
                    data = self._token_call(request, route)
                else:
                    call = self._check(request, route, version, path_id)
                    self._check_injected(route)
                    data = self._dispatch(call)
            except ApiError as exc:
                return self._envelope(
                    exc.code, exc.message, {}, exc.http_status, exc.headers
                )
            except Exception as exc:  # noqa: BLE001 - bugs answer an envelope too
                message = f"sandbox internal error: {type(exc).__name__}: {exc}"
                return self._envelope(E.INTERNAL_ERROR, message, {}, 500)
            return self._envelope(0, "Success", data)

    # ------------------------------------------------------------------ controls

    def set_data_faults(
        self,
        *,
        duplicate_rate: float = 0.0,
        out_of_order_rate: float = 0.0,
        seed: int = 0,
    ) -> None:
        """Seeded search faults: repeated items across pages, swapped neighbours."""
        with self._lock:
            self._faults = DataFaults(duplicate_rate, out_of_order_rate, seed)

    def data_faults_injected(self) -> dict[str, int]:
        """How many duplicated and swapped search items the current data faults made."""
        with self._lock:
            return {
                "duplicated": self._faults.duplicated,
                "swapped": self._faults.swapped,
            }

    def set_rate_limit(
        self, qps: int | None, *, retry_after: float | None = 1.0
    ) -> None:
        """Answer HTTP 429 / 36009002 past ``qps`` calls per app, endpoint and second.

        ``None`` switches the limit off. ``retry_after`` sets the Retry-After header.
        """
        with self._lock:
            self._rate_limit = None if qps is None else _RateLimit(qps, retry_after)

    def inject_error(
        self,
        endpoint: str,
        code: int,
        message: str = "sandbox injected error",
        *,
        http_status: int = 200,
        count: int = 1,
    ) -> None:
        """Answer the next ``count`` checked calls to ``endpoint`` (a regex over labels)
        with a business error such as 36009003 or 25001028, without acting."""
        with self._lock:
            error = ApiError(code, message, http_status=http_status)
            self._injected.append(_InjectedError(re.compile(endpoint), error, count))

    def inject_transient(self, endpoint: str, *, count: int = 1) -> None:
        """Answer the next ``count`` calls to ``endpoint`` with 10006402 "Internal error.
        Please try again" (HTTP 200), without acting: a transient read error seen on
        order detail (issue 8; see ``errors.TRY_AGAIN``)."""
        self.inject_error(
            endpoint, E.TRY_AGAIN, "Internal error. Please try again", count=count
        )

    # ------------------------------------------------------------------ internals

    def _consent(self, request: SimRequest) -> SimResponse:
        """The seller consent page (``consent``): a code for every shop the app holds
        tokens for, or for every shop when it holds none yet."""
        with self._lock:
            world = self._world

            def issue(app_key: str) -> str:
                granted = {s for g in world.grants if g.app_key == app_key
                           for s in g.shop_ids}  # fmt: skip
                shops = sorted(granted or world.shops)
                return self.issue_auth_code(app_key, shops)

            return consent_page(request, sorted(world.apps), issue)

    def _envelope(
        self,
        code: int,
        message: str,
        data: dict[str, Any],
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> SimResponse:
        stamp = self.clock.now().strftime("%Y%m%d%H%M%S")
        request_id = f"{stamp}{self._rid_rng.getrandbits(72):018X}"
        hdrs = {"X-Tt-Logid": request_id, **(headers or {})}
        payload = {
            "code": code,
            "message": message,
            "request_id": request_id,
            "data": data,
        }
        return SimResponse.json(payload, status, hdrs)

    def _check_rate(self, request: SimRequest, route: Route) -> None:
        limit = self._rate_limit
        if limit is None:
            return
        now = self._world.now()
        key = (request.query_dict().get("app_key", ""), route.label)
        second, count = limit.seen.get(key, (now, 0))
        count = count + 1 if second == now else 1
        limit.seen[key] = (now, count)
        if count > limit.qps:
            headers = {}
            if limit.retry_after is not None:
                ra = limit.retry_after
                headers["Retry-After"] = (
                    str(int(ra)) if float(ra).is_integer() else f"{ra:g}"
                )
            raise ApiError(
                E.TOO_MANY_REQUESTS,
                "Too many requests",
                http_status=429,
                headers=headers,
            )

    def _check_injected(self, route: Route) -> None:
        for rule in self._injected:
            if rule.remaining > 0 and rule.pattern.fullmatch(route.label):
                rule.remaining -= 1
                raise rule.error

    def _token_call(self, request: SimRequest, route: Route) -> dict[str, Any]:
        query = request.query_dict()
        if route.action.endswith("/get"):
            return routes.token_get(self._world, query)
        return routes.token_refresh(self._world, query)

    def _check(
        self, request: SimRequest, route: Route, version: str, path_id: str
    ) -> _Call:
        ctype = request.headers.get("content-type")
        if (ctype and not ctype.lower().startswith("application/json")) or (
            request.body and not ctype
        ):
            raise ApiError(E.BAD_CONTENT_TYPE, "Content-Type must be application/json")
        query = request.query_dict()
        app = self._world.apps.get(query.get("app_key", ""))
        if app is None:
            raise E.invalid_param("app_key is missing or invalid")
        sign = query.get("sign")
        if not sign:
            raise E.invalid_param("sign is required")
        # Checked as of the request's arrival: the gateway admits a call before the slow
        # part, so a token expiring during a delay fault does not undo it (see common).
        arrived = (
            to_epoch(request.received_at)
            if request.received_at is not None
            else self._world.now()
        )
        self._check_timestamp(query.get("timestamp"), arrived)
        if not verify_sign(
            app.app_secret, request.path, request.query, request.body, ctype, sign
        ):
            raise ApiError(E.INVALID_SIGN, "Invalid signature", http_status=401)
        grant = self._check_token(
            request.headers.get("x-tts-access-token"), app, arrived
        )
        if route.scope not in grant.scopes:
            raise ApiError(E.SCOPE_NOT_GRANTED, f"Scope {route.scope} is not granted")
        shop = self._check_shop(query, route, grant)
        return _Call(request, route, version, path_id, query, app, grant, shop)

    def _webhooks(
        self, call: _Call, shop: Shop, body: dict[str, Any]
    ) -> dict[str, Any]:
        if call.request.method == "GET":
            return {"webhooks": self.webhooks.listed(shop.shop_id)}
        address, event_type = body.get("address"), body.get("event_type")
        if not isinstance(address, str) or not address or len(address) > 255:
            raise E.invalid_param("address is required (a URL of at most 255 chars)")
        if event_type not in EVENT_TYPES:
            raise E.invalid_param(f"event_type {event_type!r} is not supported")
        self.webhooks.subscribe(
            Subscription(shop.shop_id, event_type, address, call.app.app_key,
                         call.app.app_secret)
        )  # fmt: skip
        return {}

    def _check_timestamp(self, raw: str | None, now: int) -> None:
        if raw is None or not raw.isdigit():
            raise E.invalid_param("timestamp is required (Unix seconds)")
        skew = int(raw) - now
        if skew < -MAX_PAST_SKEW:
            raise E.invalid_param("timestamp is expired: older than 5 minutes")
        if skew > MAX_FUTURE_SKEW:
            raise E.invalid_param(
                "timestamp is invalid: more than 30 seconds in the future"
            )

    def _check_token(self, token: str | None, app: App, now: int) -> Grant:
        grant = self._world.grant_by_access(token) if token else None
        if grant is None or grant.app_key != app.app_key:
            raise ApiError(E.INVALID_ACCESS_TOKEN, "Invalid x-tts-access-token header")
        if grant.superseded or now >= grant.access_expire:
            raise ApiError(E.ACCESS_TOKEN_EXPIRED, "Access token is expired")
        return grant

    def _check_shop(
        self, query: dict[str, str], route: Route, grant: Grant
    ) -> Shop | None:
        cipher = query.get("shop_cipher")
        if route.kind == "global":
            if cipher is not None:
                raise E.invalid_param("shop_cipher not required")
            return None
        if not cipher:
            raise ApiError(E.SHOP_CIPHER_MISSING, "shop_cipher is required")
        shop = self._world.shop_by_cipher(cipher)
        if shop is None or shop.shop_id not in grant.shop_ids:
            raise E.invalid_param("shop_cipher is invalid for this access token")
        shop_id = query.get("shop_id")
        if shop_id and shop_id != shop.shop_id:
            raise E.invalid_param("shop_id does not match shop_cipher")
        return shop

    def _dispatch(self, call: _Call) -> dict[str, Any]:
        world, action, version = self._world, call.route.action, call.version
        if call.shop is None:
            return routes.authorized_shops(world, call.grant)
        shop, query = call.shop, call.query
        body = routes.parse_body(call.request.body)
        if action == "/order/202309/orders/search":
            return routes.search_orders(world, shop, query, body, self._faults)
        if action == "/order/{v}/orders":
            return routes.order_detail(world, shop, call.request.query, version)
        if action == "/return_refund/{v}/cancellations":
            return cancels.seller_cancel(world, shop, body, version)
        if action == "/return_refund/{v}/cancellations/search":
            return routes.search_cancellations(
                world, shop, query, body, version, self._faults
            )
        if action.endswith(("/approve", "/reject")):
            decision = action.rsplit("/", 1)[1]
            key = query.get("idempotency_key")
            return cancels.decide(world, shop, call.path_id, decision, key, body)
        if action == "/event/202309/webhooks":
            return self._webhooks(call, shop, body)
        if action.endswith("/reject_reasons"):
            return cancels.list_reject_reasons(
                world, shop, query.get("return_or_cancel_id"), query.get("locale")
            )
        return cancels.eligibility(world, shop, call.path_id, query, version)
