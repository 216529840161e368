"""TikTok Shop Partner API client (API 202309+): signed calls, paging and operations.

Every call carries ``app_key``, a ``timestamp`` from the injected clock, ``shop_cipher``
on shop-scoped modules and a ``sign`` over exactly what is sent: the JSON body is
serialised once and those bytes go on the wire, list params are comma-joined, and the
query string is built here so ``page_token`` values with ``+ / =`` are percent-encoded
on the URL and signed decoded. The transport rebuilds the query before each attempt, so
a retry is re-signed with a fresh timestamp. The access token rides in the
``x-tts-access-token`` header; on 105002 the token is refreshed and the call sent once
more.

Writes (``cancel_order``, ``approve_cancellation``) go out with ``write=True``: they are
sent once, and any transient answer (even a 429 or 25001028) raises ``OutcomeUnknownError``
for the engine to re-read and, when the answer was a refusal, send again through its ledger.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urlencode

import requests
import structlog

from cancelsync import reasons
from cancelsync.clients.http import RetryPolicy, TokenBucket, Transport, check_and_pace
from cancelsync.clients.tiktok import envelope, mapper
from cancelsync.clients.tiktok.envelope import raise_for_response
from cancelsync.clients.tiktok.signing import sign_request
from cancelsync.clients.tiktok.tokens import TokenManager
from cancelsync.clock import Clock, to_epoch
from cancelsync.config import StoreConfig, TikTokConfig
from cancelsync.errors import (
    AuthError,
    ConfigApiError,
    DataError,
    FatalApiError,
    NotFoundError,
)
from cancelsync.models import Page, TikTokCancellation, TikTokOrder, TikTokShop

log = structlog.get_logger("cancelsync.tiktok")

SHOPS_PATH = "/authorization/202309/shops"
ORDERS_PATH = "/order/202309/orders"
ORDER_SEARCH_PATH = "/order/202309/orders/search"
CANCEL_PATH = "/return_refund/202309/cancellations"
CANCEL_SEARCH_PATH = "/return_refund/202309/cancellations/search"
WEBHOOKS_PATH = "/event/202309/webhooks"
MAX_WEBHOOK_ADDRESS = 255
APPROVE_PATH = "/return_refund/202309/cancellations/{cancel_id}/approve"
ELIGIBILITY_PATH = "/return_refund/202602/orders/{order_id}/aftersale_eligibility"

MAX_IDS_PER_CALL = 50  # Get Order Detail takes at most 50 ids
THROTTLED_CODE = "36009002"  # too many requests (also HTTP 429)
MAX_ORDER_PAGE = 100
MAX_CANCELLATION_PAGE = 50
MAX_IDEMPOTENCY_KEY = 255
# No search of ours needs more pages than this in one go: a cursor scan stops at its own
# cap first (``cancelsync.sync.scan.MAX_SCAN_PAGES``, the same number) and resumes next
# cycle, and a lookup (one order's cancellations) needs a few. A search still asking for
# more is a server handing out fresh page tokens forever: ``DataError``, not a loop.
MAX_PAGES = 200
# Modules that act for the seller account, not one shop: shop_cipher must not be sent.
_ACCOUNT_MODULES = frozenset({"authorization", "seller"})
# The endpoint (or its version) does not exist on this host.
_UNAVAILABLE_CODES = frozenset(
    {envelope.BAD_PATH, envelope.BAD_METHOD, envelope.BAD_VERSION}
)

Timestamp = datetime | int


@dataclass(frozen=True)
class ShopsProbe:
    """Get Authorized Shops plus TikTok's clock (the reply's ``Date`` header)."""

    shops: list[TikTokShop]
    server_time: datetime | None


def _epoch(value: Timestamp) -> int:
    return value if isinstance(value, int) else to_epoch(value)


def _listify(value: str | Sequence[str] | None) -> list[str] | None:
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)


def _server_time(resp: requests.Response) -> datetime | None:
    raw = resp.headers.get("Date")
    if not raw:
        return None
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return when if when.tzinfo is not None else None


class TikTokClient:
    """One TikTok shop (one ``shop_cipher``) through the Partner API.

    Args:
        session: the ``requests.Session`` to send with (closed by its owner).
        base_url: the API host, ``https://open-api.tiktokglobalshop.com`` or a sandbox.
        tokens: hands out the access token and refreshes it.
        shop_cipher: the shop's cipher; ``None`` allows account calls only.
        clock: the source of each request's ``timestamp``.
    """

    def __init__(
        self,
        session: requests.Session,
        *,
        base_url: str,
        app_key: str,
        app_secret: str,
        tokens: TokenManager,
        shop_cipher: str | None,
        clock: Clock,
        timeout: float,
        verify: bool = True,
        rate_limiter: TokenBucket | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self._transport = Transport(
            session,
            platform=envelope.PLATFORM,
            base_url=base_url,
            timeout=timeout,
            verify=verify,
            rate_limiter=rate_limiter,
            retry=retry,
        )
        self._rate_limiter = rate_limiter
        self._app_key = app_key
        self._app_secret = app_secret
        self._tokens = tokens
        self.shop_cipher = shop_cipher
        self._clock = clock

    @classmethod
    def from_config(
        cls,
        session: requests.Session,
        tiktok: TikTokConfig,
        store: StoreConfig,
        *,
        tokens: TokenManager,
        clock: Clock,
        shop_cipher: str | None = None,
        retry: RetryPolicy | None = None,
    ) -> TikTokClient:
        """A client for one configured store (``shop_cipher`` overrides the config)."""
        return cls(
            session,
            base_url=tiktok.api_base_url,
            app_key=store.app_key,
            app_secret=store.app_secret,
            tokens=tokens,
            shop_cipher=shop_cipher or store.shop_cipher,
            clock=clock,
            timeout=tiktok.timeout_seconds,
            verify=tiktok.verify_tls,
            rate_limiter=TokenBucket(tiktok.requests_per_second),
            retry=retry,
        )

    @property
    def retry_policy(self) -> RetryPolicy:
        """The transport's retry policy; the engine re-sends refused writes under it."""
        return self._transport.retry

    # ------------------------------------------------------------------ plumbing

    def _query(self, path: str, params: Mapping[str, str], body: bytes | None) -> str:
        """The signed query string for one attempt (fresh timestamp each time)."""
        query = {
            **params,
            "app_key": self._app_key,
            "timestamp": str(to_epoch(self._clock.now())),
        }
        if path.split("/")[1] not in _ACCOUNT_MODULES:
            if not self.shop_cipher:
                raise ConfigApiError(
                    f"no shop_cipher for {path}",
                    platform=envelope.PLATFORM,
                    hint="set shop_id (or shop_cipher) for the store, or run "
                    "`cancelsync connect` to look the cipher up",
                )
            query["shop_cipher"] = self.shop_cipher
        sign = sign_request(self._app_secret, path, query, body)
        pairs = [*sorted(query.items()), ("sign", sign)]
        # quote (not quote_plus) with safe="": "+", "/" and "=" all go out escaped.
        return urlencode(pairs, quote_via=quote)

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        write: bool = False,
        log_path: str | None = None,
    ) -> tuple[Any, requests.Response]:
        """Send one signed call and return ``(data, response)``.

        A 105002 (access token expired) refreshes the token and sends the call once
        more; the server refused the first attempt without acting, so writes may too.
        """
        # Serialised once: these exact bytes are signed and sent.
        raw_body = (
            json.dumps(body, separators=(",", ":")).encode()
            if body is not None
            else None
        )
        token = self._tokens.access_token()
        for attempt in (1, 2):

            def prepare(
                token: str = token,
            ) -> tuple[str, bytes | None, Mapping[str, str]]:
                headers = {
                    "x-tts-access-token": token,
                    "Content-Type": "application/json",
                }
                return self._query(path, params or {}, raw_body), raw_body, headers

            try:
                resp = self._transport.request(
                    method,
                    path,
                    self._raise_for_response,
                    prepare=prepare,
                    write=write,
                    log_path=log_path or path,
                )
            except AuthError as exc:
                if not exc.refreshable or attempt == 2:
                    raise
                log.info("tiktok.token.expired", path=log_path or path)
                # Use the pair refresh() persisted, whatever ``load`` returns next.
                token = self._tokens.refresh(stale_access_token=token).access_token
                continue
            payload = envelope.parse_envelope(resp) or {}
            return payload.get("data") or {}, resp
        raise AssertionError("unreachable")  # pragma: no cover

    def _raise_for_response(self, resp: requests.Response) -> None:
        """``envelope.raise_for_response``, telling the rate limiter about throttling
        (HTTP 429 or 36009002: it slows down) or an answer (it speeds up again)."""
        check_and_pace(
            self._rate_limiter,
            lambda: raise_for_response(resp),
            throttling=lambda exc: exc.status == 429 or str(exc.code) == THROTTLED_CODE,
        )

    def _pages(
        self,
        path: str,
        *,
        params: Mapping[str, str],
        body: Mapping[str, Any],
    ) -> Iterator[Any]:
        """Yield each page's ``data``; raise ``DataError`` when a page token repeats or
        a page past ``MAX_PAGES`` is asked for (an endless search)."""
        seen: set[str] = set()
        token: str | None = None
        page = 0
        while True:
            query = dict(params)
            if token is not None:
                query["page_token"] = token
            data, _ = self._call("POST", path, params=query, body=body)
            page += 1
            yield data
            token = mapper.next_page_token(data)
            if token is None:
                return
            if token in seen:
                raise DataError(
                    f"tiktok: {path} returned the page token of an earlier page "
                    f"(page {page}); stopping instead of looping"
                )
            if page >= MAX_PAGES:
                raise DataError(
                    f"tiktok: {path} still had a next page after {page} pages; "
                    "stopping instead of paging on without end"
                )
            seen.add(token)

    # ------------------------------------------------------------------ shops

    def probe(self) -> ShopsProbe:
        """Get Authorized Shops, with TikTok's ``Date`` for the clock-skew check."""
        data, resp = self._call("GET", SHOPS_PATH)
        return ShopsProbe(mapper.shops_from_json(data), _server_time(resp))

    def get_authorized_shops(self) -> list[TikTokShop]:
        """The shops the seller authorized this app for (sent without shop_cipher)."""
        return self.probe().shops

    # ------------------------------------------------------------------ orders

    def search_orders(
        self,
        *,
        update_time_ge: Timestamp | None = None,
        update_time_lt: Timestamp | None = None,
        order_status: str | None = None,
        sort_field: str = "update_time",
        sort_order: str = "ASC",
        page_size: int = 50,
    ) -> Iterator[Page[TikTokOrder]]:
        """Yield pages of orders matching the filters (filters in the body).

        ``*_ge`` is inclusive and ``*_lt`` exclusive; TikTok may return an
        ``update_time`` outside the window, so callers overlap their windows. An order
        the mapper cannot read goes to ``Page.unreadable`` instead of failing the page.
        """
        if not 1 <= page_size <= MAX_ORDER_PAGE:
            raise ValueError(f"page_size must be 1..{MAX_ORDER_PAGE}")
        body: dict[str, Any] = {}
        if order_status is not None:
            body["order_status"] = order_status
        if update_time_ge is not None:
            body["update_time_ge"] = _epoch(update_time_ge)
        if update_time_lt is not None:
            body["update_time_lt"] = _epoch(update_time_lt)
        params = {
            "page_size": str(page_size),
            "sort_field": sort_field,
            "sort_order": sort_order,
        }
        for data in self._pages(ORDER_SEARCH_PATH, params=params, body=body):
            orders = mapper.orders_page_from_json(data)
            log.debug(
                "tiktok.page.fetched", kind="orders", count=len(orders),
                unreadable=len(orders.unreadable),
            )  # fmt: skip
            yield orders

    def get_orders(self, tiktok_order_ids: Sequence[str]) -> list[TikTokOrder]:
        """Order details, fetched in batches of at most 50 comma-joined ids."""
        ids = list(dict.fromkeys(tiktok_order_ids))
        orders: list[TikTokOrder] = []
        for start in range(0, len(ids), MAX_IDS_PER_CALL):
            batch = ids[start : start + MAX_IDS_PER_CALL]
            data, _ = self._call("GET", ORDERS_PATH, params={"ids": ",".join(batch)})
            orders.extend(mapper.orders_from_json(data))
        return orders

    def get_order(self, tiktok_order_id: str) -> TikTokOrder:
        """One order's details; ``NotFoundError`` when TikTok does not return it."""
        for order in self.get_orders([tiktok_order_id]):
            if order.tiktok_order_id == tiktok_order_id:
                return order
        raise NotFoundError(
            f"TikTok order {tiktok_order_id} not found in this shop",
            platform=envelope.PLATFORM,
            hint="check that the Magento order belongs to this store's shop",
        )

    # ------------------------------------------------------------------ cancellations

    def search_cancellations(
        self,
        *,
        update_time_ge: Timestamp | None = None,
        update_time_lt: Timestamp | None = None,
        cancel_status: str | Sequence[str] | None = None,
        cancel_types: str | Sequence[str] | None = None,
        order_ids: Sequence[str] | None = None,
        cancel_ids: Sequence[str] | None = None,
        sort_field: str = "update_time",
        sort_order: str = "ASC",
        page_size: int = 50,
    ) -> Iterator[Page[TikTokCancellation]]:
        """Yield pages of cancellation records matching the filters; a record the mapper
        cannot read goes to ``Page.unreadable`` (with its id and time when readable)."""
        if not 1 <= page_size <= MAX_CANCELLATION_PAGE:
            raise ValueError(f"page_size must be 1..{MAX_CANCELLATION_PAGE}")
        body: dict[str, Any] = {}
        if update_time_ge is not None:
            body["update_time_ge"] = _epoch(update_time_ge)
        if update_time_lt is not None:
            body["update_time_lt"] = _epoch(update_time_lt)
        for key, value in (
            ("cancel_status", _listify(cancel_status)),
            ("cancel_types", _listify(cancel_types)),
            ("order_ids", _listify(order_ids)),
            ("cancel_ids", _listify(cancel_ids)),
        ):
            if value is not None:
                body[key] = value
        params = {
            "page_size": str(page_size),
            "sort_field": sort_field,
            "sort_order": sort_order,
        }
        for data in self._pages(CANCEL_SEARCH_PATH, params=params, body=body):
            items = mapper.cancellations_page_from_json(data)
            log.debug(
                "tiktok.page.fetched", kind="cancellations", count=len(items),
                unreadable=len(items.unreadable),
            )  # fmt: skip
            yield items

    def cancel_order(
        self,
        tiktok_order_id: str,
        cancel_reason: str,
        *,
        order_line_item_ids: Sequence[str] | None = None,
        skus: Sequence[Mapping[str, Any]] | None = None,
    ) -> tuple[str, str]:
        """Seller-cancel an order or some lines; return ``(cancel_id, cancel_status)``.

        TikTok has no idempotency key here, so an unknown outcome raises
        ``OutcomeUnknownError`` and the caller re-reads the order before trying again.

        Args:
            cancel_reason: a reason *key* valid for the order's status and market.
            order_line_item_ids: cancel only these lines (US/UK, out of stock).
            skus: or ``[{"sku_id": ..., "quantity": n}]``; never both.
        """
        if order_line_item_ids is not None and skus is not None:
            raise ValueError("pass order_line_item_ids or skus, not both")
        body: dict[str, Any] = {
            "order_id": tiktok_order_id,
            "cancel_reason": cancel_reason,
        }
        if order_line_item_ids is not None:
            body["order_line_item_ids"] = list(order_line_item_ids)
        if skus is not None:
            body["skus"] = [dict(sku) for sku in skus]
        data, _ = self._call("POST", CANCEL_PATH, body=body, write=True)
        return mapper.cancel_result_from_json(data)

    def approve_cancellation(self, cancel_id: str, *, idempotency_key: str) -> None:
        """Approve a buyer's cancellation request."""
        if not idempotency_key or len(idempotency_key) > MAX_IDEMPOTENCY_KEY:
            raise ValueError("idempotency_key must be 1..255 characters")
        path = APPROVE_PATH.format(cancel_id=quote(cancel_id, safe=""))
        self._call(
            "POST",
            path,
            params={"idempotency_key": idempotency_key},
            write=True,
            log_path=APPROVE_PATH,
        )

    def subscribe_webhook(self, address: str, event_type: str) -> None:
        """Subscribe this shop's ``event_type`` webhooks to ``address`` (an https URL of
        at most 255 characters; ``PUT /event/202309/webhooks``, reference §7).

        Subscribing again replaces the address, so a repeat is harmless.
        """
        if not address or len(address) > MAX_WEBHOOK_ADDRESS:
            raise ValueError(
                f"the webhook URL must be 1..{MAX_WEBHOOK_ADDRESS} characters"
            )
        self._call(
            "PUT",
            WEBHOOKS_PATH,
            body={"address": address, "event_type": event_type},
            write=True,
        )

    def eligible_cancel_reasons(self, tiktok_order_id: str) -> list[str] | None:
        """The reason names TikTok offers a seller cancelling this order right now.

        Returns ``None`` when the eligibility endpoint is not available on this host
        (an older API or the sandbox), so callers fall back to the static tables.
        """
        path = ELIGIBILITY_PATH.format(order_id=quote(tiktok_order_id, safe=""))
        params = {"initiate_aftersale_user": "SELLER", "request_types": "CANCEL"}
        try:
            data, _ = self._call("GET", path, params=params, log_path=ELIGIBILITY_PATH)
        except NotFoundError:
            return None
        except FatalApiError as exc:
            if exc.code in _UNAVAILABLE_CODES:
                return None
            raise
        return mapper.eligible_reasons_from_json(data)

    def valid_cancel_reasons(
        self, market: str, order_status: str, *, tiktok_order_id: str | None = None
    ) -> list[str]:
        """Reason keys valid for a seller cancel: TikTok's list for the order when
        available, else the reference table for the market and status."""
        if tiktok_order_id is not None:
            live = self.eligible_cancel_reasons(tiktok_order_id)
            if live is not None:
                return live
        return list(reasons.reasons_for(market, order_status))
