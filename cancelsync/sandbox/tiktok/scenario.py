"""Scenario controls of the TikTok Shop simulator: what sellers, buyers and TikTok do.

Tests and the demo call these Python methods to seed apps, shops, tokens and orders,
and to move orders the way things happen off-API (parcels ship, orders get paid and
delivered; cancellations live in ``cancel_scenario``). They are mixed into
``TikTokSimulator`` and take its lock, so they are safe while it serves HTTP.
Misuse (an unknown order, a move the platform would not allow) raises ``ValueError`` or
``KeyError``; API-visible errors are only for API calls.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from cancelsync.sandbox.tiktok.cancel_scenario import CancelScenarioMixin
from cancelsync.sandbox.tiktok.reasons import (
    market_for_region,
)
from cancelsync.sandbox.tiktok.state import (
    ORDER_STATUSES,
    SCOPES,
    App,
    AuthCode,
    Line,
    Order,
    Shop,
    cancellation_json,
    order_json,
)

DEMO_APP_KEY = "sandbox_app_key"
DEMO_APP_SECRET = "sandbox_app_secret"
DEMO_SHOP_ID = "7495000000000000001"
DEMO_SHOP_CIPHER = "ROW_SandboxDemoShopCipher"


@dataclass(frozen=True)
class DemoSetup:
    """Everything a client config needs to talk to the seeded demo shop."""

    app_key: str
    app_secret: str
    shop_id: str
    shop_cipher: str
    access_token: str
    refresh_token: str


class ScenarioMixin(CancelScenarioMixin):
    """Seeding and off-API events; see the module docstring."""

    # ------------------------------------------------------------ apps, shops, tokens

    def add_app(self, app_key: str, app_secret: str) -> None:
        """Register a Partner Center app."""
        with self._lock:
            self._world.apps[app_key] = App(app_key, app_secret)

    def add_shop(
        self,
        shop_id: str | None = None,
        name: str = "Sandbox Shop",
        region: str = "US",
        cipher: str | None = None,
        seller_type: str = "LOCAL",
    ) -> str:
        """Add a shop (``region``: a market code, ``UK`` or ``GB``); returns its id."""
        with self._lock:
            world = self._world
            market = market_for_region(region)
            shop_id = shop_id or world.new_id("749", 19)
            cipher = cipher or world.new_secret("ROW_", 28)
            code = f"{market.region}LC{world.new_secret('', 6).upper()}"
            world.shops[shop_id] = Shop(
                shop_id, name, market, cipher, seller_type, code
            )
            return shop_id

    def shop(self, shop_id: str) -> dict[str, str]:
        """A shop's id, name, market, region and cipher."""
        with self._lock:
            s = self._world.shops[shop_id]
            return {
                "id": s.shop_id,
                "name": s.name,
                "market": s.market.code,
                "region": s.market.region,
                "cipher": s.cipher,
                "currency": s.market.currency,
            }

    def issue_auth_code(
        self, app_key: str, shop_ids: Sequence[str], scopes: Sequence[str] | None = None
    ) -> str:
        """The code a seller's consent would send back: single use, valid 30 minutes
        (reference §3 "Auth code"; ``world.AUTH_CODE_TTL``). ``GET /open/authorize``
        (``consent``) issues one too."""
        with self._lock:
            world = self._world
            self._known_shops(shop_ids)
            code = world.new_secret("TTP_", 32)
            world.codes[code] = AuthCode(
                code, app_key, tuple(shop_ids), tuple(scopes or SCOPES), world.now()
            )
            return code

    def seed_tokens(
        self, app_key: str, shop_ids: Sequence[str], scopes: Sequence[str] | None = None
    ) -> tuple[str, str]:
        """Pre-authorize ``shop_ids``: returns ``(access_token, refresh_token)``."""
        with self._lock:
            if app_key not in self._world.apps:
                raise KeyError(f"no sandbox app {app_key!r}; call add_app first")
            self._known_shops(shop_ids)
            grant = self._world.issue_grant(
                app_key, tuple(shop_ids), tuple(scopes or SCOPES)
            )
            return grant.access_token, grant.refresh_token

    def expire_access_tokens(self) -> None:
        """Every access token expires now (the next API call answers 105002)."""
        with self._lock:
            now = self._world.now()
            for grant in self._world.grants:
                grant.access_expire = min(grant.access_expire, now)

    def expire_refresh_tokens(self) -> None:
        """Every refresh token expires now (a refresh answers 36004001)."""
        with self._lock:
            now = self._world.now()
            for grant in self._world.grants:
                grant.refresh_expire = min(grant.refresh_expire, now)

    def seed_demo(self, region: str = "US") -> DemoSetup:
        """The demo app, one shop and a token pair (idempotent for the app and shop)."""
        with self._lock:
            self.add_app(DEMO_APP_KEY, DEMO_APP_SECRET)
            if DEMO_SHOP_ID not in self._world.shops:
                self.add_shop(
                    DEMO_SHOP_ID, "Sandbox Demo Shop", region, DEMO_SHOP_CIPHER
                )
            access, refresh = self.seed_tokens(DEMO_APP_KEY, [DEMO_SHOP_ID])
            return DemoSetup(
                DEMO_APP_KEY,
                DEMO_APP_SECRET,
                DEMO_SHOP_ID,
                DEMO_SHOP_CIPHER,
                access,
                refresh,
            )

    # ------------------------------------------------------------------ orders

    def create_order(
        self,
        shop_id: str,
        lines: Sequence[Mapping[str, Any]],
        *,
        status: str = "AWAITING_SHIPMENT",
        shipping_fee: Decimal | str | int = "0",
        tax: Decimal | str | int = "0",
        currency: str | None = None,
        order_id: str | None = None,
        create_time: int | None = None,
        update_time: int | None = None,
        buyer_user_id: str | None = None,
    ) -> str:
        """Create an order; each line's ``quantity`` becomes that many unit lines.

        A line is ``{"sku_id", "seller_sku", "price", "quantity"}`` plus optional
        ``original_price``, ``product_id``, ``product_name``, ``sku_name``, ``is_gift``.
        An explicit ``update_time`` behind the last poll makes a late event.
        """
        if status not in ORDER_STATUSES or status == "CANCELLED":
            raise ValueError(
                f"create_order status must be one of {ORDER_STATUSES[:-1]}"
            )
        with self._lock:
            world = self._world
            shop = world.shops[shop_id]
            order_id = order_id or world.new_id("57", 18)
            if order_id in world.orders:
                raise ValueError(f"order {order_id} already exists")
            created = world.now() if create_time is None else create_time
            package_id = world.new_id("11", 18)
            units: list[Line] = []
            for number, spec in enumerate(lines, start=1):
                price = Decimal(str(spec["price"]))
                sku_id = str(spec.get("sku_id") or world.new_id("17", 19))
                product_id = str(spec.get("product_id") or world.new_id("17", 19))
                for _ in range(int(spec.get("quantity", 1))):
                    units.append(
                        Line(
                            line_id=world.new_id("57", 18),
                            sku_id=sku_id,
                            seller_sku=str(spec.get("seller_sku", f"SKU-{number}")),
                            product_id=product_id,
                            product_name=str(
                                spec.get("product_name", f"Product {number}")
                            ),
                            sku_name=str(spec.get("sku_name", "Default")),
                            sale_price=price,
                            original_price=Decimal(
                                str(spec.get("original_price", price))
                            ),
                            is_gift=bool(spec.get("is_gift", False)),
                            package_id=package_id,
                            display_status=status,
                        )
                    )
            if not units:
                raise ValueError("an order needs at least one unit")
            order = Order(
                order_id=order_id,
                shop_id=shop_id,
                status=status,
                currency=currency or shop.market.currency,
                shipping_fee=Decimal(str(shipping_fee)),
                tax=Decimal(str(tax)),
                create_time=created,
                update_time=created,
                buyer_user_id=buyer_user_id or world.new_id("7", 19),
                lines=units,
                paid_time=None if status == "UNPAID" else created,
            )
            if status == "PARTIALLY_SHIPPING":
                units[0].shipped = True
            world.set_status(order, status, created)
            if update_time is not None:
                order.update_time = update_time
            world.orders[order_id] = order
            return order_id

    def pay(self, order_id: str, *, hold: bool = False) -> None:
        """UNPAID -> AWAITING_SHIPMENT (or ON_HOLD during the buyer's cancel window)."""
        with self._lock:
            order = self._live(order_id, ("UNPAID",))
            self._world.set_status(order, "ON_HOLD" if hold else "AWAITING_SHIPMENT")

    def release_hold(self, order_id: str) -> None:
        """ON_HOLD -> AWAITING_SHIPMENT."""
        with self._lock:
            self._world.set_status(
                self._live(order_id, ("ON_HOLD",)), "AWAITING_SHIPMENT"
            )

    def ship(
        self,
        order_id: str,
        line_ids: Iterable[str] | None = None,
        *,
        collected: bool = True,
    ) -> None:
        """Ship all live lines (IN_TRANSIT, or AWAITING_COLLECTION) or some of them
        (PARTIALLY_SHIPPING). A pending buyer request is closed."""
        with self._lock:
            order = self._live(order_id, ("AWAITING_SHIPMENT", "PARTIALLY_SHIPPING"))
            self._world.ship(order, line_ids, collected)

    def deliver(self, order_id: str) -> None:
        """A shipped order arrives: DELIVERED."""
        with self._lock:
            order = self._live(order_id, ("AWAITING_COLLECTION", "IN_TRANSIT"))
            self._world.set_status(order, "DELIVERED")

    def complete(self, order_id: str) -> None:
        """DELIVERED -> COMPLETED (no more returns or refunds)."""
        with self._lock:
            self._world.set_status(self._live(order_id, ("DELIVERED",)), "COMPLETED")

    def set_status(self, order_id: str, status: str) -> None:
        """Force any non-cancelled status (an escape hatch for odd scenarios)."""
        if status not in ORDER_STATUSES or status == "CANCELLED":
            raise ValueError(
                "use a cancel method to cancel; set_status moves live orders"
            )
        with self._lock:
            self._world.set_status(self._world.order_of(order_id), status)

    # ------------------------------------------------------------------ views

    def order(self, order_id: str) -> dict[str, Any]:
        """The order as Get Order Detail 202507 renders it."""
        with self._lock:
            self._world.tick()
            order = self._world.order_of(order_id)
            return order_json(order, self._world.shops[order.shop_id], "202507")

    def cancellations(self, order_id: str | None = None) -> list[dict[str, Any]]:
        """Cancellation records (202309 shape), oldest first, maybe for one order."""
        with self._lock:
            world = self._world
            world.tick()
            result = []
            for record in world.cancellations.values():
                if order_id is not None and record.order_id != order_id:
                    continue
                order = world.orders[record.order_id]
                language = world.shops[order.shop_id].market.language
                result.append(cancellation_json(record, order, "202309", language))
            return result

    # ------------------------------------------------------------------ helpers

    def _known_shops(self, shop_ids: Sequence[str]) -> None:
        missing = [s for s in shop_ids if s not in self._world.shops]
        if missing or not shop_ids:
            raise KeyError(f"unknown sandbox shop ids {missing}; call add_shop first")
