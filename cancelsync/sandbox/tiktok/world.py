"""The TikTok Shop simulator's state and its order/cancellation lifecycle.

``World`` owns every record and the moves between states. It knows nothing about HTTP:
the scenario methods of ``TikTokSimulator`` and the API handlers both call it, always
under the simulator's lock. Time comes from the injected clock, and the lazy moves
(auto-approving a buyer request after its deadline, SUCCESS turning COMPLETE after the
refund lag) happen in ``tick()``, stamped with the moment they were due.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from cancelsync.clock import Clock, to_epoch
from cancelsync.sandbox.tiktok import errors as E
from cancelsync.sandbox.tiktok.errors import ApiError
from cancelsync.sandbox.tiktok.reasons import (
    BUYER_REASONS_PAID,
    BUYER_REASONS_UNPAID,
    is_out_of_stock,
    seller_keys_for_market,
    seller_reasons,
)
from cancelsync.sandbox.tiktok.state import (
    COMPLETE,
    PENDING,
    SUCCESS,
    WITHDRAWN,
    App,
    AuthCode,
    Cancellation,
    Grant,
    Line,
    Order,
    Shop,
)

DAY = 86400
# The cancellation webhook spells a withdrawn request ``…_CANCELLED`` (reference §7).
_WEBHOOK_STATUS = {WITHDRAWN: "CANCELLATION_REQUEST_CANCELLED"}
# Reference §3 "Auth code": single use, valid about 30 min (UNCONFIRMED; RB auth.rb).
AUTH_CODE_TTL = 30 * 60


@dataclass(frozen=True)
class Timing:
    """Durations the lifecycle uses, in seconds."""

    access_token_ttl: int = 7 * DAY
    refresh_token_ttl: int = 36500 * DAY  # observed expiries lie ~100 years ahead
    buyer_request_window: int = DAY  # auto-approve after this (US seller-shipped)
    refund_delay: int = 0  # SUCCESS -> COMPLETE lag; 0 = complete at once


class World:
    """Every record of one simulated TikTok Shop platform."""

    def __init__(self, clock: Clock, seed: int, timing: Timing) -> None:
        self.clock = clock
        self.timing = timing
        self.rng = random.Random(seed)
        self.apps: dict[str, App] = {}
        self.shops: dict[str, Shop] = {}
        self.codes: dict[str, AuthCode] = {}
        self.grants: list[Grant] = []
        self.orders: dict[str, Order] = {}
        self.cancellations: dict[str, Cancellation] = {}
        self.zeroed_skus: set[tuple[str, str]] = set()
        self.retired_reasons: set[str] = set()
        # Reference key -> the key this platform takes in its place; the old key answers
        # 25001020 (see ``CancelScenarioMixin.replace_reason``).
        self.replaced_reasons: dict[str, str] = {}
        # Order id -> (code, message) Get Order Detail answers for any batch holding it.
        self.failing_orders: dict[str, tuple[int, str]] = {}
        self._used_ids: set[str] = set()
        # Called with (webhook type, shop id, data) on every status change, as TikTok's
        # ORDER_STATUS_CHANGE (1) and CANCELLATION_STATUS_CHANGE (11) webhooks report
        # them (reference §7); the sandbox's webhook sender listens here.
        self.listeners: list[Callable[[int, str, dict[str, Any]], None]] = []

    def notify_order(self, order: Order) -> None:
        self._notify(1, order.shop_id, {
            "order_id": order.order_id, "order_status": order.status,
            "is_on_hold_order": order.status == "ON_HOLD",
            "update_time": order.update_time,
        })  # fmt: skip

    def notify_cancellation(self, record: Cancellation) -> None:
        self._notify(11, record.shop_id, {
            "order_id": record.order_id, "cancellations_role": record.role,
            "cancel_status": _WEBHOOK_STATUS.get(record.status, record.status),
            "cancel_id": record.cancel_id, "create_time": record.create_time,
        })  # fmt: skip

    def _notify(self, kind: int, shop_id: str, data: dict[str, Any]) -> None:
        for listener in list(self.listeners):
            listener(kind, shop_id, data)

    # ------------------------------------------------------------------ ids, time

    def now(self) -> int:
        return to_epoch(self.clock.now())

    def new_id(self, prefix: str, length: int) -> str:
        """A fresh numeric id such as TikTok's 18-19 digit strings."""
        while True:
            tail = "".join(
                self.rng.choice(string.digits) for _ in range(length - len(prefix))
            )
            candidate = prefix + tail
            if candidate not in self._used_ids:
                self._used_ids.add(candidate)
                return candidate

    def new_secret(self, prefix: str, length: int = 40) -> str:
        alphabet = string.ascii_letters + string.digits
        return prefix + "".join(self.rng.choice(alphabet) for _ in range(length))

    # ------------------------------------------------------------------ reasons

    def seller_reasons(self, market: str, status: str) -> tuple[str, ...]:
        """The seller keys accepted now: §5.4's table with replacements applied and
        retired keys left out (what aftersale eligibility lists)."""
        return tuple(
            self.replaced_reasons.get(key, key)
            for key in seller_reasons(market, status)
            if key not in self.retired_reasons
        )

    def seller_keys(self, market: str) -> frozenset[str]:
        """Every seller key the market accepts now, whatever the status."""
        return frozenset(
            self.replaced_reasons.get(key, key)
            for key in seller_keys_for_market(market)
            if key not in self.retired_reasons
        )

    def table_key(self, key: str) -> str:
        """The reference key a replacement stands for (its family decides e.g. stock)."""
        for old, new in self.replaced_reasons.items():
            if new == key:
                return old
        return key

    # ------------------------------------------------------------------ tokens

    def shop_by_cipher(self, cipher: str) -> Shop | None:
        return next((s for s in self.shops.values() if s.cipher == cipher), None)

    def issue_grant(
        self, app_key: str, shop_ids: tuple[str, ...], scopes: tuple[str, ...]
    ) -> Grant:
        now = self.now()
        grant = Grant(
            app_key=app_key,
            shop_ids=shop_ids,
            scopes=scopes,
            open_id=self.new_secret("", 32),
            access_token=self.new_secret("ROW_"),
            access_expire=now + self.timing.access_token_ttl,
            refresh_token=self.new_secret("ROW_"),
            refresh_expire=now + self.timing.refresh_token_ttl,
        )
        self.grants.append(grant)
        return grant

    def grant_by_access(self, token: str) -> Grant | None:
        return next((g for g in self.grants if g.access_token == token), None)

    def check_app(self, app_key: str, app_secret: str) -> App:
        app = self.apps.get(app_key)
        if app is None or app.app_secret != app_secret:
            raise E.invalid_param("app_key or app_secret is invalid")
        return app

    def exchange_code(self, app_key: str, code: str) -> Grant:
        """A new grant for a seller's auth code; the code is spent on the first try.

        Per reference §3 an auth code is single use and lasts about 30 minutes
        (``AUTH_CODE_TTL``): a used, expired, unknown or other app's code is 36004004
        (``errors.INVALID_AUTH_CODE``), and nothing is issued.
        """
        entry = self.codes.get(code)
        if (
            entry is None
            or entry.used
            or entry.app_key != app_key
            or self.now() > entry.issued_at + AUTH_CODE_TTL
        ):
            raise ApiError(
                E.INVALID_AUTH_CODE, "Invalid auth_code: used, expired or unknown"
            )
        entry.used = True
        return self.issue_grant(app_key, entry.shop_ids, entry.scopes)

    def refresh(self, app_key: str, refresh_token: str) -> Grant:
        old = next(
            (
                g
                for g in self.grants
                if g.refresh_token == refresh_token and g.app_key == app_key
            ),
            None,
        )
        if old is None or old.superseded or self.now() >= old.refresh_expire:
            raise ApiError(E.REFRESH_TOKEN_EXPIRED, "rt has expired")
        old.superseded = True
        fresh = self.issue_grant(app_key, old.shop_ids, old.scopes)
        fresh.open_id = old.open_id
        return fresh

    # ------------------------------------------------------------------ orders

    def order_of(self, order_id: str) -> Order:
        order = self.orders.get(order_id)
        if order is None:
            raise KeyError(f"no sandbox order {order_id!r}")
        return order

    def set_status(self, order: Order, status: str, when: int | None = None) -> None:
        """Move an order and its live lines to ``status``."""
        when = self.now() if when is None else when
        order.status = status
        order.update_time = when
        for line in order.active_lines():
            if status == "PARTIALLY_SHIPPING":
                line.display_status = (
                    "IN_TRANSIT" if line.shipped else "AWAITING_SHIPMENT"
                )
            else:
                line.display_status = status
            if status in (
                "AWAITING_COLLECTION",
                "IN_TRANSIT",
                "DELIVERED",
                "COMPLETED",
            ):
                line.shipped = True
        if (
            status not in ("UNPAID",)
            and order.paid_time is None
            and status != "CANCELLED"
        ):
            order.paid_time = when
        self.notify_order(order)

    def pending_request(self, order: Order) -> Cancellation | None:
        return next(
            (
                c
                for c in self.cancellations.values()
                if c.order_id == order.order_id and c.status == PENDING
            ),
            None,
        )

    def ship(
        self, order: Order, line_ids: Iterable[str] | None, collected: bool
    ) -> None:
        live = order.active_lines()
        chosen = (
            live
            if line_ids is None
            else [ln for ln in live if ln.line_id in set(line_ids)]
        )
        for line in chosen:
            line.shipped = True
        pending = self.pending_request(order)
        if pending is not None:  # shipping answers the buyer's request: it is closed
            self.close_request(pending, WITHDRAWN)
        if all(ln.shipped for ln in live):
            self.set_status(order, "IN_TRANSIT" if collected else "AWAITING_COLLECTION")
        else:
            self.set_status(order, "PARTIALLY_SHIPPING")

    # ------------------------------------------------------------------ cancellations

    def default_buyer_reason(self, order: Order) -> str:
        return (
            BUYER_REASONS_UNPAID[0]
            if order.status == "UNPAID"
            else BUYER_REASONS_PAID[0]
        )

    def cancel(
        self,
        order: Order,
        lines: list[Line],
        *,
        role: str,
        reason: str,
        cancel_type: str,
    ) -> Cancellation:
        """Cancel ``lines`` at once and record it (seller, system, operator, buyer)."""
        now = self.now()
        record = Cancellation(
            cancel_id=self.new_id("40", 19),
            order_id=order.order_id,
            shop_id=order.shop_id,
            cancel_type=cancel_type,
            status=SUCCESS,
            role=role,
            reason=reason,
            create_time=now,
            update_time=now,
            line_ids=[ln.line_id for ln in lines],
            cancel_line_ids=[self.new_id("40", 19) for _ in lines],
        )
        self.cancellations[record.cancel_id] = record
        self._apply(record, order, lines, now)
        self.notify_cancellation(record)
        return record

    def request_buyer_cancel(
        self, order: Order, lines: list[Line], reason: str
    ) -> Cancellation:
        """A buyer's request that waits for the seller (or the deadline)."""
        now = self.now()
        record = Cancellation(
            cancel_id=self.new_id("40", 19),
            order_id=order.order_id,
            shop_id=order.shop_id,
            cancel_type="BUYER_CANCEL",
            status=PENDING,
            role="BUYER",
            reason=reason,
            create_time=now,
            update_time=now,
            line_ids=[ln.line_id for ln in lines],
            cancel_line_ids=[self.new_id("40", 19) for _ in lines],
            deadline=now + self.timing.buyer_request_window,
        )
        self.cancellations[record.cancel_id] = record
        order.is_buyer_request_cancel = True
        order.request_cancel_time = now
        order.update_time = now
        self.notify_cancellation(record)
        return record

    def approve(self, record: Cancellation, when: int | None = None) -> None:
        """Accept a pending buyer request: its lines (still live) get cancelled."""
        when = self.now() if when is None else when
        order = self.order_of(record.order_id)
        wanted = set(record.line_ids)
        lines = [ln for ln in order.active_lines() if ln.line_id in wanted]
        record.line_ids = [ln.line_id for ln in lines]
        record.cancel_line_ids = record.cancel_line_ids[: len(lines)]
        record.status = SUCCESS
        record.deadline = None
        order.is_buyer_request_cancel = False
        self._apply(record, order, lines, when)
        self.notify_cancellation(record)

    def close_request(
        self, record: Cancellation, status: str, when: int | None = None
    ) -> None:
        """Reject or withdraw a pending request; the order carries on."""
        when = self.now() if when is None else when
        order = self.order_of(record.order_id)
        record.status = status
        record.update_time = when
        record.deadline = None
        order.is_buyer_request_cancel = False
        order.update_time = when
        self.notify_cancellation(record)

    def _apply(
        self, record: Cancellation, order: Order, lines: list[Line], when: int
    ) -> None:
        for line in lines:
            line.display_status = "CANCELLED"
            line.cancel_user = record.role
            line.cancel_reason = record.reason
        record.update_time = when
        record.should_replenish_stock = not is_out_of_stock(
            self.table_key(record.reason)
        )
        if order.paid_time is not None:  # nothing to refund on an unpaid order
            record.refund_subtotal = sum((ln.sale_price for ln in lines), Decimal(0))
            earlier = [
                c
                for c in self.cancellations.values()
                if c.order_id == order.order_id
                and c.cancel_id != record.cancel_id
                and c.status in (SUCCESS, COMPLETE)
            ]
            if not order.active_lines():  # the last lines carry what is left
                record.refund_shipping_fee = order.shipping_fee - sum(
                    (c.refund_shipping_fee for c in earlier), Decimal(0)
                )
                record.refund_tax = order.tax - sum(
                    (c.refund_tax for c in earlier), Decimal(0)
                )
            elif order.sub_total:
                share = order.tax * record.refund_subtotal / order.sub_total
                record.refund_tax = share.quantize(Decimal("0.01"))
        if self.timing.refund_delay <= 0:
            record.status = COMPLETE
        else:
            record.complete_at = when + self.timing.refund_delay
        order.update_time = when
        if not order.active_lines():
            order.status = "CANCELLED"
            order.cancel_time = when
            order.cancellation_initiator = (
                "SYSTEM" if record.role == "OPERATOR" else record.role
            )
            self.notify_order(order)
        elif order.status == "PARTIALLY_SHIPPING" and all(
            ln.shipped for ln in order.active_lines()
        ):
            self.set_status(order, "IN_TRANSIT", when)

    # ------------------------------------------------------------------ lazy moves

    def tick(self) -> None:
        """Run every move that has come due by now, each stamped when it was due."""
        now = self.now()
        due: list[tuple[int, str, Cancellation]] = []
        for record in self.cancellations.values():
            if (
                record.status == PENDING
                and record.deadline is not None
                and record.deadline <= now
            ):
                due.append((record.deadline, "approve", record))
            elif (
                record.status == SUCCESS
                and record.complete_at is not None
                and record.complete_at <= now
            ):
                due.append((record.complete_at, "complete", record))
        for when, action, record in sorted(due, key=lambda d: (d[0], d[2].cancel_id)):
            if action == "approve":
                self.approve(record, when)
                due_at = record.complete_at
                if record.status == SUCCESS and due_at is not None and due_at <= now:
                    self._complete(record, due_at)
            else:
                self._complete(record, when)

    def _complete(self, record: Cancellation, when: int) -> None:
        record.status = COMPLETE
        record.update_time = when
        record.complete_at = None
        self.notify_cancellation(record)

    def backdate(self, record_id: str, seconds: int) -> None:
        """Move an order's or a cancellation's ``update_time`` back (a late event)."""
        if record_id in self.orders:
            order = self.orders[record_id]
            order.update_time -= seconds
            order.create_time = min(order.create_time, order.update_time)
        elif record_id in self.cancellations:
            record = self.cancellations[record_id]
            record.update_time -= seconds
            record.create_time = min(record.create_time, record.update_time)
        else:
            raise KeyError(f"no sandbox order or cancellation {record_id!r}")
