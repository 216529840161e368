"""The Magento 2 REST adapter: credit memos and orders in, refunds/cancels/comments out.

``MagentoClient`` wraps one ``Transport`` (session, timeout, TLS, rate limit, retries,
one log line per call) and talks to ``/rest/<store_code>/V1/...``. It owns the protocol
details:

- one ``raise_for_response`` (``errors``) turning Magento's ``{message, parameters}``
  envelope into the error tree, with a "Resolution:" hint where we know the fix;
- keyset paging (``paging``: ``entity_id gt <last>``, ``ASC``, ``currentPage=1``)
  everywhere, because a ``currentPage`` past the end returns the last page again;
- writes (refund, cancel, comment) are sent once: an unknown outcome raises
  ``OutcomeUnknownError`` and the engine reconciles against the order's memos.

Raw JSON becomes domain models in ``mapper``; query strings come from ``search``,
already percent-encoded (space ``%20``) so that the URL OAuth 1.0a signs is the one
Magento verifies.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote

import requests

from cancelsync.clients.http import RetryPolicy, TokenBucket, Transport, check_and_pace
from cancelsync.clients.magento import mapper
from cancelsync.clients.magento.auth import auth_from_config, auth_mode_of
from cancelsync.clients.magento.bodies import refund_body
from cancelsync.clients.magento.errors import (
    PLATFORM,
    raise_for_response,
    snippet,
)
from cancelsync.clients.magento.paging import keyset_pages
from cancelsync.clients.magento.search import Filter as SearchFilter
from cancelsync.clients.magento.search import SearchCriteria
from cancelsync.config import MagentoConfig
from cancelsync.errors import (
    DataError,
    FatalApiError,
    NotFoundError,
    OutcomeUnknownError,
)
from cancelsync.models import MagentoCreditMemo, MagentoOrder, Page

ID_BATCH = 50  # ids per "in" filter: keeps URLs short and pages small
MSI_MODULES = frozenset({"Magento_Inventory", "Magento_InventorySales"})

T = TypeVar("T")


class MagentoClient:
    """Magento 2 REST client for one store (one ``base_url`` and ``store_code``)."""

    def __init__(
        self,
        session: requests.Session,
        *,
        base_url: str,
        store_code: str,
        timeout: float,
        verify: bool = True,
        auth: requests.auth.AuthBase,
        tiktok_order_id_field: str = "ext_order_id",
        rate_limiter: TokenBucket | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        if not store_code or "/" in store_code:
            raise ValueError(f"invalid magento store_code {store_code!r}")
        self.store_code = store_code
        self.auth_mode = auth_mode_of(auth)
        self.tiktok_order_id_field = tiktok_order_id_field
        self._rate_limiter = rate_limiter
        self._transport = Transport(
            session,
            platform=PLATFORM,
            base_url=base_url,
            timeout=timeout,
            verify=verify,
            auth=auth,
            rate_limiter=rate_limiter,
            retry=retry,
        )
        self._prefix = f"/rest/{quote(store_code, safe='')}/V1/"

    @classmethod
    def from_config(
        cls,
        cfg: MagentoConfig,
        session: requests.Session | None = None,
        retry: RetryPolicy | None = None,
    ) -> MagentoClient:
        """A client for ``[magento]``; it owns (and ``close()`` closes) the session."""
        return cls(
            session if session is not None else requests.Session(),
            base_url=cfg.base_url,
            store_code=cfg.store_code,
            timeout=cfg.timeout_seconds,
            verify=cfg.verify_tls,
            auth=auth_from_config(cfg),
            tiktok_order_id_field=cfg.tiktok_order_id_field,
            rate_limiter=TokenBucket(cfg.requests_per_second),
            retry=retry,
        )

    @property
    def session(self) -> requests.Session:
        return self._transport.session

    def close(self) -> None:
        """Close the HTTP session."""
        self._transport.session.close()

    def __enter__(self) -> MagentoClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ protocol

    def raise_for_response(self, resp: requests.Response) -> None:
        """Raise the error matching a Magento error response (see ``errors``); tell the
        rate limiter about a 429 (it slows down) or an answer (it speeds up again)."""
        check_and_pace(
            self._rate_limiter,
            lambda: raise_for_response(resp, auth_mode=self.auth_mode),
            throttling=lambda exc: exc.status == 429,
        )

    def _path(self, endpoint: str) -> str:
        return self._prefix + endpoint

    def _get(self, endpoint: str, query: str | None = None) -> Any:
        """GET with an already encoded query (``search.encode_query``).

        The string goes to ``requests`` as is, so the URL OAuth 1.0a signs is the URL
        sent: ``requests`` would encode ``params=`` pairs with ``+`` for a space, which
        Magento verifies as a literal plus (401 "The signature is invalid").
        """
        resp = self._transport.request(
            "GET",
            self._path(endpoint),
            self.raise_for_response,
            params=query or None,
            headers={"Accept": "application/json"},
        )
        return self._json(resp, endpoint)

    def _post(self, endpoint: str, body: Mapping[str, Any] | None) -> Any:
        """One write: never retried once it may have reached Magento."""
        data = json.dumps(body).encode("utf-8") if body is not None else None
        headers = {"Accept": "application/json"}
        if data is not None:
            # Content-Type matters: requests-oauthlib signs a JSON body as "not form",
            # i.e. without the body and without oauth_body_hash, as Magento expects.
            headers["Content-Type"] = "application/json"
        resp = self._transport.request(
            "POST",
            self._path(endpoint),
            self.raise_for_response,
            data=data,
            headers=headers,
            write=True,
        )
        try:
            return self._json(resp, endpoint)
        except DataError as exc:
            raise OutcomeUnknownError(
                f"POST {endpoint} succeeded (HTTP {resp.status_code}) but its reply "
                f"was unreadable: {exc}",
                platform=PLATFORM,
                status=resp.status_code,
                hint="cancelsync re-reads the remote state before trying again",
            ) from exc

    @staticmethod
    def _json(resp: requests.Response, endpoint: str) -> Any:
        try:
            return resp.json()
        except ValueError:
            raise DataError(
                f"magento {endpoint}: reply is not JSON: {snippet(resp.text or '')!r}"
            ) from None

    def search(
        self, endpoint: str, criteria: SearchCriteria
    ) -> tuple[list[Any], int | None]:
        """One raw search page: ``(items, total_count)`` for e.g. ``"orders"``."""
        data = self._get(endpoint, criteria.query())
        if not isinstance(data, Mapping):
            raise DataError(f"magento {endpoint}: search reply is not an object")
        items = data.get("items")
        if items is None or (isinstance(items, Mapping) and not items):
            items = []
        if not isinstance(items, list):
            raise DataError(f"magento {endpoint}: search reply 'items' is not a list")
        total = data.get("total_count")
        if isinstance(total, str) and total.isascii() and total.isdigit():
            total = int(total)
        if not isinstance(total, int) or isinstance(total, bool):
            total = None
        return items, total

    def _keyset(
        self,
        endpoint: str,
        base: SearchCriteria,
        convert: Callable[[Any], T],
        key: Callable[[T], int],
        *,
        after_entity_id: int = 0,
        page_size: int = 100,
        tolerant: bool = False,
    ) -> Iterator[Page[T]]:
        return keyset_pages(
            lambda criteria: self.search(endpoint, criteria),
            base,
            convert,
            key,
            after_entity_id=after_entity_id,
            page_size=page_size,
            label=f"magento {endpoint}",
            tolerant=tolerant,
        )

    @staticmethod
    def _with_stores(base: SearchCriteria, store_ids: Sequence[int]) -> SearchCriteria:
        return base.where("store_id", list(store_ids), "in") if store_ids else base

    # ------------------------------------------------------------------ credit memos

    def iter_credit_memos(
        self,
        after_entity_id: int,
        *,
        store_ids: Sequence[int] = (),
        page_size: int = 100,
        created_since: datetime | None = None,
    ) -> Iterator[Page[MagentoCreditMemo]]:
        """Yield pages of credit memos with ``entity_id > after_entity_id``, ascending.

        Keyset paging (``currentPage`` stays 1); filter by ``store_id`` when given.
        Search results may lack comments; use ``credit_memos_for_order`` when needed.

        ``created_since`` (aware) adds, in the same query, the memos created at or after
        it whatever their id (the late-commit re-scan): one filter group ORs
        ``entity_id gt <after>`` with ``created_at gteq <since>``, and the keyset pages
        through the union from the lowest id, so an idle cycle costs one call.
        """
        base = SearchCriteria()
        start = after_entity_id
        if created_since is not None:
            base = base.any_of(
                SearchFilter("entity_id", after_entity_id, "gt"),
                SearchFilter("created_at", created_since, "gteq"),
            )
            start = 0
        return self._keyset(
            "creditmemos",
            self._with_stores(base, store_ids),
            mapper.credit_memo_from_json,
            _memo_id,
            after_entity_id=start,
            page_size=page_size,
            tolerant=True,  # the engine reports unreadable memos by id
        )

    def latest_credit_memo_id(self, *, store_ids: Sequence[int] = ()) -> int | None:
        """The highest credit memo ``entity_id`` (where a fresh keyset cursor starts)."""
        criteria = self._with_stores(SearchCriteria(), store_ids)
        items, _total = self.search(
            "creditmemos", criteria.sort("entity_id", "DESC").page(1)
        )
        if not items:
            return None
        return _memo_id(mapper.credit_memo_from_json(items[0]))

    def credit_memos_created_since(
        self,
        since: datetime,
        *,
        store_ids: Sequence[int] = (),
        page_size: int = 100,
    ) -> Page[MagentoCreditMemo]:
        """Every credit memo with ``created_at >= since`` (the late-commit rescan).

        ``since`` must be aware; it is compared as Magento's UTC
        ``YYYY-MM-DD HH:MM:SS``.
        ``gteq`` because ``created_at`` has 1-second resolution (dedupe on the memo id).
        """
        base = self._with_stores(
            SearchCriteria().where("created_at", since, "gteq"), store_ids
        )
        memos: Page[MagentoCreditMemo] = Page([])
        for page in self._keyset(
            "creditmemos", base, mapper.credit_memo_from_json, _memo_id,
            page_size=page_size, tolerant=True,
        ):  # fmt: skip
            memos.extend(page)
            memos.unreadable.extend(page.unreadable)
        return memos

    def credit_memos_for_order(self, magento_entity_id: int) -> list[MagentoCreditMemo]:
        """Every credit memo of one order, ascending, each with its comments."""
        return self.credit_memos_for_orders([magento_entity_id])[int(magento_entity_id)]

    def credit_memos_for_orders(
        self, magento_entity_ids: Iterable[int]
    ) -> dict[int, list[MagentoCreditMemo]]:
        """Every credit memo of each order, ascending, each with its comments.

        Every requested order id is a key (an order without memos has an empty list).
        One search per 50 orders (``order_id in …``); a memo whose search row lacks
        its comments is completed by one more read.
        """
        wanted = list(dict.fromkeys(int(i) for i in magento_entity_ids))
        result: dict[int, list[MagentoCreditMemo]] = {i: [] for i in wanted}
        for start in range(0, len(wanted), ID_BATCH):
            batch = wanted[start : start + ID_BATCH]
            base = (
                SearchCriteria().where("order_id", batch[0])
                if len(batch) == 1
                else SearchCriteria().where("order_id", batch, "in")
            )
            for page in self._keyset(
                "creditmemos", base, _RawMemo.from_json, _raw_memo_id, page_size=100
            ):
                for raw in page:
                    memo = raw.memo
                    if not raw.has_comments:
                        memo = self._with_comments(memo)
                    result.setdefault(memo.magento_entity_id, []).append(memo)
        return result

    def _with_comments(self, memo: MagentoCreditMemo) -> MagentoCreditMemo:
        memo_id = memo.magento_creditmemo_id
        try:
            data = self._get(f"creditmemo/{memo_id}/comments")
        except NotFoundError:
            return self.get_credit_memo(memo_id)
        comments = mapper.comments_from_json(
            data, where=f"magento credit memo {memo_id} comments"
        )
        return _replace_comments(memo, comments)

    def get_credit_memo(self, creditmemo_id: int) -> MagentoCreditMemo:
        """One credit memo by its ``entity_id``; ``NotFoundError`` when missing."""
        return mapper.credit_memo_from_json(
            self._get(f"creditmemo/{int(creditmemo_id)}")
        )

    # ------------------------------------------------------------------ orders

    def get_order(self, magento_entity_id: int) -> MagentoOrder:
        """One order by ``entity_id`` (not the increment id); ``NotFoundError``."""
        return self._order(self._get(f"orders/{int(magento_entity_id)}"))

    def _order(self, raw: Any) -> MagentoOrder:
        return mapper.order_from_json(
            raw, tiktok_order_id_field=self.tiktok_order_id_field
        )

    def orders_by_tiktok_ids(self, ids: Iterable[str]) -> dict[str, list[MagentoOrder]]:
        """Orders whose TikTok id column matches, by TikTok id.

        Every requested id is a key, with zero, one or (a duplicate import) several
        orders. The configured ``tiktok_order_id_field`` must be a top-level
        ``sales_order`` column for the filter to work. Queried in batches of 50.
        """
        wanted = list(dict.fromkeys(str(i).strip() for i in ids))
        result: dict[str, list[MagentoOrder]] = {i: [] for i in wanted}
        queryable = [i for i in wanted if i and "," not in i]
        for start in range(0, len(queryable), ID_BATCH):
            batch = queryable[start : start + ID_BATCH]
            base = SearchCriteria().where(self.tiktok_order_id_field, batch, "in")
            for page in self._keyset(
                "orders", base, self._order, _order_id, page_size=50
            ):
                for order in page:
                    if order.tiktok_order_id in result:
                        result[order.tiktok_order_id].append(order)
        return result

    def orders_by_entity_ids(self, ids: Iterable[int]) -> dict[int, MagentoOrder]:
        """Orders by ``entity_id``; ids Magento does not know are left out."""
        wanted = list(dict.fromkeys(int(i) for i in ids))
        result: dict[int, MagentoOrder] = {}
        for start in range(0, len(wanted), ID_BATCH):
            batch = wanted[start : start + ID_BATCH]
            base = SearchCriteria().where("entity_id", batch, "in")
            for page in self._keyset(
                "orders", base, self._order, _order_id, page_size=50
            ):
                for order in page:
                    result[order.magento_entity_id] = order
        return result

    # ------------------------------------------------------------------ writes

    def refund_order(
        self,
        magento_entity_id: int,
        *,
        items: Sequence[tuple[int, Decimal]],
        shipping_amount: Decimal | None,
        return_to_stock_items: Sequence[int],
        comment: str,
        notify: bool = False,
    ) -> int:
        """Refund an order offline (``POST order/{id}/refund``); return the new memo id.

        Args:
            items: ``(order_item_id, qty)`` pairs: configurable and fixed-price bundle
                *parent* rows, a dynamic-price bundle's *children* (Magento refunds
                such a parent only through them). Never empty: Magento refunds
                everything when ``items`` is empty.
            shipping_amount: ``None`` leaves ``arguments.shipping_amount`` out, so
                Magento refunds all remaining shipping, tax included, in the right
                currency (use it for "everything that is left"). A value is sent as
                is and Magento reads it in *base* currency, *including tax* when the
                store displays shipping incl. tax, and below the maximum as a ratio
                of the shipping and its tax; send ``0`` on partial refunds.
            return_to_stock_items: order item ids to restock (child and parent ids).
            comment: stored on the memo (not visible on the storefront).

        Raises:
            AlreadyAppliedError: Magento says nothing is left to refund / order closed.
            OutcomeUnknownError: the call may have been applied (timeout, dropped
                connection, 5xx); re-read the order's memos before sending it again.
        """
        body = refund_body(
            items=items,
            shipping_amount=shipping_amount,
            return_to_stock_items=return_to_stock_items,
            comment=comment,
            notify=notify,
        )
        reply = self._post(f"order/{int(magento_entity_id)}/refund", body)
        memo_id = _as_id(reply)
        if memo_id is None:
            raise OutcomeUnknownError(
                f"refund of order {magento_entity_id} returned {snippet(repr(reply))} "
                "instead of a credit memo id",
                platform=PLATFORM,
                hint="cancelsync re-reads the order's credit memos before trying again",
            )
        return memo_id

    def cancel_order(self, magento_entity_id: int) -> bool:
        """``POST orders/{id}/cancel``; check the result.

        ``False`` (still HTTP 200) when Magento declined: ``canCancel()`` is false, e.g.
        fully invoiced, on hold, complete or closed.
        """
        reply = self._post(f"orders/{int(magento_entity_id)}/cancel", None)
        if not isinstance(reply, bool):
            raise DataError(
                f"magento cancel of order {magento_entity_id}: got {reply!r}"
            )
        return reply

    def add_order_comment(self, magento_entity_id: int, comment: str) -> None:
        """Add an order history comment, not emailed, not shown on the storefront.

        ``status`` is left out on purpose: a valid value would change the order status.
        """
        body = {
            "statusHistory": {
                "comment": comment,
                "is_customer_notified": 0,
                "is_visible_on_front": 0,
                "parent_id": int(magento_entity_id),
            }
        }
        reply = self._post(f"orders/{int(magento_entity_id)}/comments", body)
        if reply is False:
            raise FatalApiError(
                f"Magento refused the comment on order {magento_entity_id}",
                platform=PLATFORM,
            )

    def hold_order(self, magento_entity_id: int) -> None:
        """``POST orders/{id}/hold``: Magento answers ``true``, or 400 "A hold action is
        not available." when ``canHold()`` is false (already on hold, payment review,
        canceled, complete or closed)."""
        self._expect_true("hold", magento_entity_id)

    def unhold_order(self, magento_entity_id: int) -> None:
        """``POST orders/{id}/unhold``: ``true``, or 400 "You cannot remove the hold."
        when the order is not on hold."""
        self._expect_true("unhold", magento_entity_id)

    def _expect_true(self, action: str, magento_entity_id: int) -> None:
        reply = self._post(f"orders/{int(magento_entity_id)}/{action}", None)
        if reply is not True:
            raise DataError(
                f"magento {action} of order {magento_entity_id}: got {reply!r}"
            )

    # ------------------------------------------------------------------ modules

    def list_modules(self) -> list[str]:
        """Enabled module names (``GET /V1/modules``; ``Magento_Backend::admin``)."""
        data = self._get("modules")
        if not isinstance(data, list) or not all(isinstance(m, str) for m in data):
            raise DataError("magento modules: expected a list of module names")
        return list(data)

    @staticmethod
    def has_msi(modules: Iterable[str]) -> bool:
        """True when Multi-Source Inventory is enabled (MSI restock semantics)."""
        return not MSI_MODULES.isdisjoint(modules)


class _RawMemo:
    """A mapped memo plus whether its payload carried ``comments`` at all."""

    __slots__ = ("has_comments", "memo")

    def __init__(self, memo: MagentoCreditMemo, has_comments: bool) -> None:
        self.memo = memo
        self.has_comments = has_comments

    @classmethod
    def from_json(cls, raw: Any) -> _RawMemo:
        memo = mapper.credit_memo_from_json(raw)
        return cls(memo, isinstance(raw, Mapping) and raw.get("comments") is not None)


def _memo_id(memo: MagentoCreditMemo) -> int:
    return memo.magento_creditmemo_id


def _raw_memo_id(raw: _RawMemo) -> int:
    return raw.memo.magento_creditmemo_id


def _order_id(order: MagentoOrder) -> int:
    return order.magento_entity_id


def _replace_comments(
    memo: MagentoCreditMemo, comments: tuple[str, ...]
) -> MagentoCreditMemo:
    return replace(memo, comments=comments)


def _as_id(reply: Any) -> int | None:
    if isinstance(reply, bool):
        return None
    if isinstance(reply, int):
        return reply if reply > 0 else None
    if isinstance(reply, str) and reply.strip().isascii() and reply.strip().isdigit():
        return int(reply.strip()) or None
    return None
