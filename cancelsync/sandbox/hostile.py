"""Hostile payloads: a simulator wrapper that corrupts chosen replies (issue 14).

The simulators answer like well-behaved platforms; real ones (and the proxies in front of
them) do not always. ``HostileTikTok`` and ``HostileMagento`` wrap a running server's
simulator and rewrite what it answers, so the same e2e harness can serve:

- one order's, cancellation's or credit memo's JSON with a field missing, of the wrong type,
  or PHP's ``[]`` in place of an object (``corrupt_*`` with a function of the item);
- an HTML page instead of JSON, with any status (a proxy's 502, a captive portal's 200);
- an endless search: every TikTok page carries a fresh ``next_page_token``;
- a Magento keyset search that ignores the ``entity_id gt`` filter (the last id never grows).

Install with ``HostileTikTok.install(sandbox.tiktok_server)``: the server looks its simulator
up per request, so the wrapper takes over at once, and every reply it rewrites is still
recorded in the server's journal (e.g. refund POST counts stay exact). Requests are never
changed: a rewritten reply is what the platform "said" to a correctly signed request.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Self

from cancelsync.clock import Clock
from cancelsync.sandbox.common import SimRequest, SimResponse

Item = dict[str, Any]
Corrupt = Callable[[Item], Any]  # a copy of one item → what to send in its place
Rewrite = Callable[[SimRequest, SimResponse], SimResponse]

HTML_502 = (
    "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad "
    "Gateway</h1></center><hr><center>nginx</center></body></html>"
)
CAPTIVE_PORTAL = (
    "<!DOCTYPE html><html><head><title>Sign in to the network</title></head><body>"
    "<form action='/login'>Accept the terms to continue</form></body></html>"
)


def drop(*keys: str) -> Corrupt:
    """A corruption that removes ``keys`` from the item."""

    def corrupt(item: Item) -> Item:
        for key in keys:
            item.pop(key, None)
        return item

    return corrupt


def put(**values: Any) -> Corrupt:
    """A corruption that sets fields to the given (usually wrong) values."""

    def corrupt(item: Item) -> Item:
        item.update(values)
        return item

    return corrupt


@dataclass
class _Rule:
    pattern: re.Pattern[str]
    rewrite: Rewrite
    remaining: int | None  # None: every matching reply


class Hostile:
    """Wraps a simulator (``handle`` + ``endpoint_name``) and rewrites chosen replies."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self._rules: list[_Rule] = []
        self._lock = threading.Lock()

    @classmethod
    def install(cls, server: Any) -> Self:
        """Wrap ``server.simulator`` in place and return the wrapper."""
        hostile = cls(server.simulator)
        server.simulator = hostile
        return hostile

    @property
    def clock(self) -> Clock:
        clock: Clock = self.inner.clock
        return clock

    def endpoint_name(self, request: SimRequest) -> str:
        return str(self.inner.endpoint_name(request))

    def clear(self) -> None:
        """Back to the honest simulator."""
        with self._lock:
            self._rules.clear()

    def on(self, endpoint: str, rewrite: Rewrite, count: int | None = None) -> None:
        """Rewrite the replies of endpoints matching the regex ``endpoint`` (``count``:
        only the next that many; ``None``: all of them until ``clear``)."""
        with self._lock:
            self._rules.append(_Rule(re.compile(endpoint), rewrite, count))

    def html(self, endpoint: str, status: int = 200, body: str | None = None,
             count: int | None = None) -> None:  # fmt: skip
        """Answer an HTML page (a proxy's error page, a captive portal) with ``status``;
        the simulator still handles the request (a write behind a proxy may apply)."""
        page = (
            body
            if body is not None
            else (HTML_502 if status >= 500 else CAPTIVE_PORTAL)
        )

        def rewrite(request: SimRequest, response: SimResponse) -> SimResponse:
            return SimResponse(status, page.encode(), {"Content-Type": "text/html"})

        self.on(endpoint, rewrite, count)

    def rewrite_json(
        self, endpoint: str, change: Callable[[Any], Any], count: int | None = None
    ) -> None:
        """Rewrite a JSON reply's parsed body (``change`` gets a deep copy)."""

        def rewrite(request: SimRequest, response: SimResponse) -> SimResponse:
            try:
                payload = json.loads(response.body)
            except ValueError:
                return response
            body = json.dumps(change(copy.deepcopy(payload))).encode()
            return SimResponse(response.status, body, dict(response.headers))

        self.on(endpoint, rewrite, count)

    def handle(self, request: SimRequest) -> SimResponse:
        response: SimResponse = self.inner.handle(request)
        endpoint = self.endpoint_name(request)
        for rewrite in self._due(endpoint):
            response = rewrite(request, response)
        return response

    def _due(self, endpoint: str) -> list[Rewrite]:
        due = []
        with self._lock:
            for rule in self._rules:
                if not rule.pattern.fullmatch(endpoint):
                    continue
                if rule.remaining is not None:
                    if rule.remaining <= 0:
                        continue
                    rule.remaining -= 1
                due.append(rule.rewrite)
        return due


def _each(items: Any, match: Callable[[Item], bool], corrupt: Corrupt) -> Any:
    if not isinstance(items, list):
        return items
    return [corrupt(it) if isinstance(it, dict) and match(it) else it for it in items]


# ----------------------------------------------------------------------------- TikTok

TIKTOK_ORDER_READS = r"GET /order/\{v\}/orders|POST /order/202309/orders/search"
TIKTOK_CANCEL_SEARCH = r"POST /return_refund/\{v\}/cancellations/search"


class HostileTikTok(Hostile):
    """Hostile replies of the TikTok Shop simulator (``data`` inside the envelope)."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self._endless: dict[str, SimResponse] = {}
        self._tokens = itertools.count(1)

    def corrupt_order(self, tiktok_order_id: str, corrupt: Corrupt) -> None:
        """Order detail and order search send this order as ``corrupt`` makes it."""
        self._data_list(TIKTOK_ORDER_READS, "orders",
                        lambda o: o.get("id") == tiktok_order_id, corrupt)  # fmt: skip

    def corrupt_cancellation(
        self,
        corrupt: Corrupt,
        *,
        tiktok_order_id: str | None = None,
        cancel_id: str | None = None,
    ) -> None:
        """Cancellation search sends the matching records as ``corrupt`` makes them."""

        def match(c: Item) -> bool:
            return (
                tiktok_order_id is None or c.get("order_id") == tiktok_order_id
            ) and (cancel_id is None or c.get("cancel_id") == cancel_id)

        self._data_list(TIKTOK_CANCEL_SEARCH, "cancellations", match, corrupt)

    def endless_pages(self, endpoint: str = TIKTOK_CANCEL_SEARCH) -> None:
        """Every page of this search carries a fresh ``next_page_token``; a request with
        one of those tokens gets the first page again (and another fresh token)."""
        self.on(endpoint, self._endless_page)

    def handle(self, request: SimRequest) -> SimResponse:
        token = request.query_dict().get("page_token", "")
        endpoint = self.endpoint_name(request)
        if token.startswith("hostile-") and endpoint in self._endless:
            # Our own token: the simulator would refuse it, so answer from the first page.
            first = self._endless[endpoint]
            return self._with_token(first)
        return super().handle(request)

    def _endless_page(self, request: SimRequest, response: SimResponse) -> SimResponse:
        endpoint = self.endpoint_name(request)
        self._endless.setdefault(endpoint, response)
        return self._with_token(response)

    def _with_token(self, response: SimResponse) -> SimResponse:
        payload = json.loads(response.body)
        if isinstance(payload.get("data"), dict):
            payload["data"]["next_page_token"] = f"hostile-{next(self._tokens)}"
        return SimResponse(response.status, json.dumps(payload).encode(),
                           dict(response.headers))  # fmt: skip

    def _data_list(
        self, endpoint: str, key: str, match: Callable[[Item], bool], corrupt: Corrupt
    ) -> None:
        def change(payload: Any) -> Any:
            data = payload.get("data") if isinstance(payload, dict) else None
            if isinstance(data, dict) and key in data:
                data[key] = _each(data[key], match, corrupt)
            return payload

        self.rewrite_json(endpoint, change)


# ----------------------------------------------------------------------------- Magento

MAGENTO_SEARCHES = {"orders": "GET orders", "memos": "GET creditmemos"}
MAGENTO_READS = {"orders": r"GET orders/\{id\}", "memos": r"GET creditmemo/\{id\}"}


class HostileMagento(Hostile):
    """Hostile replies of the Magento simulator (search ``items[]`` or one entity)."""

    def corrupt_order(self, magento_entity_id: int, corrupt: Corrupt) -> None:
        """Order reads (one order, order search) send this order as ``corrupt`` makes it."""
        self._entity("orders", magento_entity_id, corrupt)

    def corrupt_memo(self, magento_creditmemo_id: int, corrupt: Corrupt) -> None:
        """Credit memo reads send this memo as ``corrupt`` makes it."""
        self._entity("memos", magento_creditmemo_id, corrupt)

    def stuck_keyset(self, endpoint: str = "GET creditmemos") -> None:
        """This search ignores its filters: every call answers the first reply again."""
        first: list[SimResponse] = []

        def rewrite(request: SimRequest, response: SimResponse) -> SimResponse:
            if not first:
                first.append(response)
            return first[0]

        self.on(endpoint, rewrite)

    def _entity(self, kind: str, entity_id: int, corrupt: Corrupt) -> None:
        def match(item: Item) -> bool:
            return str(item.get("entity_id")) == str(entity_id)

        def in_search(payload: Any) -> Any:
            if isinstance(payload, dict):
                payload["items"] = _each(payload.get("items"), match, corrupt)
            return payload

        def one(payload: Any) -> Any:
            return (
                corrupt(payload)
                if isinstance(payload, dict) and match(payload)
                else payload
            )

        self.rewrite_json(MAGENTO_SEARCHES[kind], in_search)
        self.rewrite_json(MAGENTO_READS[kind], one)
