"""``MagentoSimulator``: a faithful in-memory Magento 2.4 REST API (sales endpoints).

It routes ``/rest/<store_code>/V1/...`` and ``/rest/V1/...`` like Magento (route first,
then authorization, then input conversion), answers in Magento's error envelope and
keeps all state in memory behind one re-entrant lock, so the threaded
``SimulatorServer`` can serve it. Tests and demos drive the store through the scenario
methods (import an order, refund as a merchant, ship, hold, commit late memos).

Flags (plain attributes, change them at any time):
    ``input_limit_enabled``: ``webapi/validation/input_limit_enabled``.
    ``integration_bearer_enabled``: ``oauth/consumer/enable_integration_as_bearer``.
    ``msi_enabled``: MSI modules installed (return-to-stock semantics, ``GET modules``).
    ``display_sales_shipping_incl_tax``: ``tax/sales_display/shipping`` is "Including
    Tax" (``Tax\\Model\\Config::displaySalesShippingInclTax`` compares the setting
    with 2, so "Including and Excluding Tax" counts as off); a refund's
    ``arguments.shipping_amount`` then includes tax (see ``totals``). Magento reads it
    per store view; the simulator has one value for all.

Currencies: ``currency`` is the order currency of imported orders; ``base_currency``
(default: the same) with ``base_to_order_rate`` (order amount = base amount x rate)
makes a store whose base currency differs, so every ``base_*`` field differs too.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cancelsync.clock import Clock, SystemClock
from cancelsync.sandbox.common import SimRequest, SimResponse
from cancelsync.sandbox.magento import api
from cancelsync.sandbox.magento.auth import Authenticator, MagentoCredentials, forbidden
from cancelsync.sandbox.magento.errors import (
    CM_CANNOT_CANCEL,
    NO_ROUTE,
    MagentoError,
    bad_request,
    internal_error,
    json_response,
    phpify,
)
from cancelsync.sandbox.magento.importer import OrderLine, import_order
from cancelsync.sandbox.magento.refund import RefundRequest
from cancelsync.sandbox.magento.search import apply_fields, parse_fields
from cancelsync.sandbox.magento.state import MagentoState

BASE_MODULES = (
    "Magento_Store",
    "Magento_Directory",
    "Magento_Eav",
    "Magento_Customer",
    "Magento_Catalog",
    "Magento_CatalogInventory",
    "Magento_ConfigurableProduct",
    "Magento_Sales",
    "Magento_SalesInventory",
    "Magento_Payment",
    "Magento_Backend",
    "Magento_Integration",
    "Magento_Webapi",
    "Magento_Security",
    "Magento_TwoFactorAuth",
)
MSI_MODULES = (
    "Magento_Inventory",
    "Magento_InventoryApi",
    "Magento_InventoryCatalog",
    "Magento_InventoryReservations",
    "Magento_InventorySales",
    "Magento_InventorySalesApi",
    "Magento_InventoryShipping",
)
_PATH = re.compile(r"^/rest/(?:(?P<store>[^/]+)/)?V1/(?P<route>.+?)/?$")

Handler = Callable[["MagentoSimulator", SimRequest, int, dict[str, Any]], Any]


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    label: str
    resource: str
    handler: Handler
    has_body: bool = False


def _route(
    method: str, path: str, resource: str, handler: Handler, *, body: bool = False
) -> _Route:
    regex = "^" + re.escape(path).replace(r"\{id\}", "(?P<id>(?!items$)[^/]+)") + "$"
    return _Route(
        method, re.compile(regex), f"{method} {path}", resource, handler, body
    )


def _get_order(sim: MagentoSimulator, req: SimRequest, ident: int, body: Any) -> Any:
    return sim.state.get_order(ident).to_json()


def _search_orders(
    sim: MagentoSimulator, req: SimRequest, ident: int, body: Any
) -> Any:
    return api.search_orders(sim.state, req.query, input_limit=sim.input_limit_enabled)


def _order_comments(
    sim: MagentoSimulator, req: SimRequest, ident: int, body: Any
) -> Any:
    order = sim.state.orders.get(ident)
    return api.comment_list(ident, order.status_histories if order else [])


def _add_order_comment(
    sim: MagentoSimulator, req: SimRequest, ident: int, body: Any
) -> Any:
    return api.add_order_comment(sim.state, ident, body)


def _cancel(sim: MagentoSimulator, req: SimRequest, ident: int, body: Any) -> Any:
    return sim.state.cancel(ident)


def _hold(sim: MagentoSimulator, req: SimRequest, ident: int, body: Any) -> Any:
    sim.state.hold(ident)
    return True


def _unhold(sim: MagentoSimulator, req: SimRequest, ident: int, body: Any) -> Any:
    sim.state.unhold(ident)
    return True


def _refund(sim: MagentoSimulator, req: SimRequest, ident: int, body: Any) -> Any:
    request = api.parse_refund_body(body)
    return sim.state.refund(
        ident,
        request,
        msi=sim.msi_enabled,
        display_shipping_incl_tax=sim.display_sales_shipping_incl_tax,
    )


def _search_memos(sim: MagentoSimulator, req: SimRequest, ident: int, body: Any) -> Any:
    return api.search_memos(sim.state, req.query, input_limit=sim.input_limit_enabled)


def _get_memo(sim: MagentoSimulator, req: SimRequest, ident: int, body: Any) -> Any:
    return sim.state.get_memo(ident).to_json()


def _cancel_memo(sim: MagentoSimulator, req: SimRequest, ident: int, body: Any) -> Any:
    sim.state.get_memo(ident)
    raise bad_request(CM_CANNOT_CANCEL)  # credit memos are immutable


def _memo_comments(
    sim: MagentoSimulator, req: SimRequest, ident: int, body: Any
) -> Any:
    memo = sim.state.memos.get(ident)
    return api.comment_list(ident, memo.comments if memo else [])


def _add_memo_comment(
    sim: MagentoSimulator, req: SimRequest, ident: int, body: Any
) -> Any:
    return api.add_memo_comment(sim.state, body)


def _modules(sim: MagentoSimulator, req: SimRequest, ident: int, body: Any) -> Any:
    return sim.modules()


_VIEW, _MEMO = "Magento_Sales::actions_view", "Magento_Sales::sales_creditmemo"
ROUTES = (
    _route("GET", "orders", _VIEW, _search_orders),
    _route("GET", "orders/{id}", _VIEW, _get_order),
    _route("GET", "orders/{id}/comments", _VIEW, _order_comments),
    _route(
        "POST",
        "orders/{id}/comments",
        "Magento_Sales::comment",
        _add_order_comment,
        body=True,
    ),
    _route("POST", "orders/{id}/cancel", "Magento_Sales::cancel", _cancel),
    _route("POST", "orders/{id}/hold", "Magento_Sales::hold", _hold),
    _route("POST", "orders/{id}/unhold", "Magento_Sales::unhold", _unhold),
    _route(
        "POST", "order/{id}/refund", "Magento_Sales::creditmemo", _refund, body=True
    ),
    _route("GET", "creditmemos", _MEMO, _search_memos),
    _route("GET", "creditmemo/{id}", _MEMO, _get_memo),
    _route("PUT", "creditmemo/{id}", _MEMO, _cancel_memo),
    _route("GET", "creditmemo/{id}/comments", _MEMO, _memo_comments),
    _route("POST", "creditmemo/{id}/comments", _MEMO, _add_memo_comment, body=True),
    _route("GET", "modules", "Magento_Backend::admin", _modules),
)


class MagentoSimulator:
    """An in-memory Magento 2.4 store speaking the sales REST API (see module doc)."""

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        credentials: MagentoCredentials | None = None,
        store_codes: Mapping[str, int] | None = None,
        msi_enabled: bool = True,
        input_limit_enabled: bool = False,
        integration_bearer_enabled: bool = False,
        integration_resources: Iterable[str] | None = None,
        currency: str = "USD",
        base_currency: str | None = None,
        base_to_order_rate: float = 1.0,
        display_sales_shipping_incl_tax: bool = False,
        default_stock: float = 100.0,
        extra_modules: Iterable[str] = (),
    ) -> None:
        self.clock: Clock = clock or SystemClock()
        self.credentials = credentials or MagentoCredentials()
        self.store_codes = dict(store_codes or {"default": 1})
        self.store_codes.setdefault("all", 0)
        self.msi_enabled = msi_enabled
        self.input_limit_enabled = input_limit_enabled
        self.integration_bearer_enabled = integration_bearer_enabled
        self.display_sales_shipping_incl_tax = display_sales_shipping_incl_tax
        self.extra_modules = tuple(extra_modules)
        self.auth = Authenticator(
            self.credentials, integration_resources=integration_resources
        )
        self.state = MagentoState(
            self.clock,
            currency=currency,
            default_stock=default_stock,
            base_currency="" if base_currency in (None, currency) else base_currency,
            base_to_order_rate=base_to_order_rate,
        )
        self.last_internal_error: BaseException | None = None
        self._lock = threading.RLock()

    # ------------------------------------------------------------------- HTTP
    def endpoint_name(self, request: SimRequest) -> str:
        """A label such as ``"POST order/{id}/refund"`` (the raw path when unrouted)."""
        found = self._match(request)
        return found[0].label if found else f"{request.method} {request.path}"

    def handle(self, request: SimRequest) -> SimResponse:
        """Answer one REST call as Magento would; never raises."""
        try:
            with self._lock:
                return self._handle(request)
        except MagentoError as exc:
            return exc.response()
        except Exception as exc:  # noqa: BLE001 - Magento masks anything else as a 500
            self.last_internal_error = exc
            return internal_error().response()

    def _match(self, request: SimRequest) -> tuple[_Route, str | None] | None:
        path = _PATH.match(request.path)
        if path is None:
            return None
        store = path.group("store")
        if store is not None and store not in self.store_codes:
            return None  # an unknown store code is read as part of the route
        for route in ROUTES:
            found = route.pattern.match(path.group("route"))
            if found and route.method == request.method:
                return route, found.groupdict().get("id")
        return None

    def _handle(self, request: SimRequest) -> SimResponse:
        found = self._match(request)
        if found is None:
            raise MagentoError(404, NO_ROUTE)
        route, raw_id = found
        caller = self.auth.authenticate(
            request, integration_bearer_enabled=self.integration_bearer_enabled
        )
        if not caller.allows(route.resource):
            raise forbidden(route.resource)
        ident = api.to_int(raw_id) if raw_id is not None else 0
        body = api.read_body(request) if route.has_body else {}
        payload = route.handler(self, request, ident, body)
        fields = request.query_dict().get("fields")
        if request.method == "GET" and fields:
            payload = apply_fields(phpify(payload), parse_fields(fields))
        return json_response(payload)

    # ------------------------------------------------------------- scenario API
    def import_tiktok_order(
        self,
        tiktok_order_id: str,
        lines: Sequence[OrderLine | Mapping[str, Any]],
        *,
        shipping_amount: float = 0.0,
        shipping_tax_amount: float = 0.0,
        store_id: int = 1,
        invoiced: bool = True,
        order_id_field: str = "ext_order_id",
        created_at: datetime | None = None,
        customer_email: str = "buyer@example.com",
        payment_method: str = "checkmo",
    ) -> int:
        """Create an order as a TikTok importer would; returns its ``entity_id``.

        ``lines`` are ``OrderLine``s or mappings with the same keys (``sku``, ``qty``,
        ``price``, optional ``product_type`` simple|virtual|configurable|bundle,
        ``name``; a bundle also ``bundle_price_type`` fixed|dynamic and
        ``bundle_items``).
        Amounts are in the order currency; ``shipping_tax_amount`` is the tax on the
        shipping (in the grand total). With ``invoiced`` (default) the order is
        invoiced and paid (``processing``).
        The TikTok id is stored in the ``order_id_field`` column. Stock is deducted.
        """
        parsed = [
            line if isinstance(line, OrderLine) else OrderLine(**line) for line in lines
        ]
        with self._lock:
            return import_order(
                self.state,
                str(tiktok_order_id),
                parsed,
                shipping_amount=shipping_amount,
                shipping_tax_amount=shipping_tax_amount,
                store_id=store_id,
                invoiced=invoiced,
                order_id_field=order_id_field,
                created_at=created_at,
                customer_email=customer_email,
                payment_method=payment_method,
            )

    def create_credit_memo(
        self,
        entity_id: int,
        qtys: Mapping[int | str, float] | None = None,
        *,
        shipping_amount: float | None = None,
        comment: str | None = None,
        return_to_stock: Sequence[int] | None = None,
        adjustment_positive: float | None = None,
        adjustment_negative: float | None = None,
        visible: bool = True,
    ) -> int:
        """Refund as the merchant would, through the same rules as the REST call.

        ``qtys`` maps order item ids or SKUs (the refundable row: the configurable
        parent) to quantities; ``None`` refunds everything left. ``visible=False``
        allocates the memo id now but keeps the memo (and its effects) out of sight
        until ``commit_pending()``: a slow transaction committing late.
        Raises ``MagentoError`` exactly when the API would answer an error.
        """
        with self._lock:
            order = self.state.get_order(entity_id)
            by_sku = self.state.sku_rows(order)
            items: list[tuple[int, float]] = []
            for key, qty in (qtys or {}).items():
                if isinstance(key, str):
                    if key not in by_sku:
                        raise KeyError(f"SKU {key!r} is not on order {entity_id}")
                    key = by_sku[key].item_id
                items.append((key, float(qty)))
            request = RefundRequest(
                items=items,
                comment=comment,
                shipping_amount=shipping_amount,
                adjustment_positive=adjustment_positive,
                adjustment_negative=adjustment_negative,
                return_to_stock_items=None
                if return_to_stock is None
                else list(return_to_stock),
            )
            return self.state.refund(
                entity_id,
                request,
                msi=self.msi_enabled,
                visible=visible,
                display_shipping_incl_tax=self.display_sales_shipping_incl_tax,
            )

    def set_base_currency(self, base_currency: str, base_to_order_rate: float) -> None:
        """Orders imported from now on have this base currency and rate."""
        if base_to_order_rate <= 0:
            raise ValueError("base_to_order_rate must be positive")
        with self._lock:
            same = base_currency == self.state.currency
            self.state.base_currency = "" if same else base_currency
            self.state.base_to_order_rate = base_to_order_rate

    def commit_pending(self) -> list[int]:
        """Make every late memo visible (and apply it); returns their ids."""
        with self._lock:
            return self.state.commit_pending()

    def pending_memo_ids(self) -> list[int]:
        with self._lock:
            return sorted(self.state.pending)

    def ship_order(self, entity_id: int) -> None:
        """Ship everything left to ship (``complete`` once nothing is left)."""
        with self._lock:
            self.state.ship(entity_id)

    def hold_order(self, entity_id: int) -> None:
        with self._lock:
            self.state.hold(entity_id)

    def unhold_order(self, entity_id: int) -> None:
        with self._lock:
            self.state.unhold(entity_id)

    def set_payment_review(self, entity_id: int) -> None:
        with self._lock:
            self.state.set_payment_review(entity_id)

    def cancel_order(self, entity_id: int) -> bool:
        with self._lock:
            return self.state.cancel(entity_id)

    def order(self, entity_id: int) -> dict[str, Any]:
        """The order as GET orders/{id} shows it (a 404 MagentoError if absent)."""
        with self._lock:
            data: dict[str, Any] = phpify(self.state.get_order(entity_id).to_json())
            return data

    def credit_memos(self, order_id: int | None = None) -> list[dict[str, Any]]:
        """Visible credit memos (all, or one order's), oldest id first."""
        with self._lock:
            return [
                phpify(m.to_json())
                for _, m in sorted(self.state.memos.items())
                if order_id is None or m.order_id == order_id
            ]

    def stock(self, sku: str) -> float:
        """Salable quantity of ``sku`` (``default_stock`` until first touched)."""
        with self._lock:
            return self.state.stock.get(sku, self.state.default_stock)

    def set_stock(self, sku: str, qty: float) -> None:
        with self._lock:
            self.state.stock[sku] = float(qty)

    def modules(self) -> list[str]:
        """``GET /V1/modules``: enabled module names (MSI ones when ``msi_enabled``)."""
        names = list(BASE_MODULES) + list(self.extra_modules)
        if self.msi_enabled:
            names += MSI_MODULES
        return sorted(set(names))
