"""Off-API cancellation events of the TikTok Shop simulator.

What buyers, TikTok's system and operators, and the seller in Seller Center do to an
order outside our client's API calls, plus the lazy clock moves and late-event faults.
Mixed into ``TikTokSimulator`` through ``ScenarioMixin``; every method takes the lock.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from cancelsync.clock import Clock
from cancelsync.sandbox.tiktok.reasons import (
    OPERATOR_REASONS,
    SYSTEM_REASONS,
    seller_keys_for_market,
)
from cancelsync.sandbox.tiktok.state import (
    PENDING,
    WITHDRAWN,
    Cancellation,
    Line,
    Order,
)
from cancelsync.sandbox.tiktok.world import World


class CancelScenarioMixin:
    """Buyer, system, operator and Seller Center cancellations (see the module)."""

    clock: Clock
    _lock: threading.RLock
    _world: World

    # ------------------------------------------------------------------ cancellations

    def buyer_cancel(
        self,
        order_id: str,
        *,
        pending: bool = False,
        line_ids: Sequence[str] | None = None,
        reason: str | None = None,
    ) -> str:
        """The buyer cancels, or with ``pending=True`` asks the seller to (auto-approved
        after the request window). Returns the cancel_id."""
        with self._lock:
            world = self._world
            order = self._live(order_id)
            lines = self._lines(order, line_ids, unshipped=True)
            if world.pending_request(order) is not None:
                raise ValueError(f"order {order_id} already has a pending request")
            reason = reason or world.default_buyer_reason(order)
            if pending:
                if order.status == "UNPAID":
                    raise ValueError(
                        "an unpaid order is cancelled at once, not by request"
                    )
                return world.request_buyer_cancel(order, lines, reason).cancel_id
            record = world.cancel(
                order, lines, role="BUYER", reason=reason, cancel_type="BUYER_CANCEL"
            )
            return record.cancel_id

    def buyer_withdraw(self, cancel_id: str) -> None:
        """The buyer withdraws a pending request (CANCELLATION_REQUEST_CANCEL)."""
        with self._lock:
            self._world.close_request(self._pending(cancel_id), WITHDRAWN)

    def seller_center_approve(self, cancel_id: str) -> None:
        """The seller approves a pending request in Seller Center (not via the API)."""
        with self._lock:
            self._world.approve(self._pending(cancel_id))

    def seller_center_reject(self, cancel_id: str) -> None:
        """The seller rejects a pending request in Seller Center (not via the API)."""
        with self._lock:
            self._world.close_request(self._pending(cancel_id), WITHDRAWN)

    def system_cancel(
        self,
        order_id: str,
        *,
        reason: str | None = None,
        line_ids: Sequence[str] | None = None,
    ) -> str:
        """TikTok's system cancels (unpaid timeout, failed delivery): role SYSTEM."""
        with self._lock:
            order = self._live(order_id)
            default = (
                SYSTEM_REASONS[0] if order.status == "UNPAID" else SYSTEM_REASONS[1]
            )
            return self._cancel(order, line_ids, "SYSTEM", reason or default)

    def operator_cancel(
        self,
        order_id: str,
        *,
        reason: str | None = None,
        line_ids: Sequence[str] | None = None,
    ) -> str:
        """A TikTok operator cancels: role OPERATOR (shown as SYSTEM before 202602)."""
        with self._lock:
            order = self._live(order_id)
            return self._cancel(
                order, line_ids, "OPERATOR", reason or OPERATOR_REASONS[0]
            )

    def partial_cancel(
        self,
        order_id: str,
        line_ids: Sequence[str],
        *,
        role: str = "BUYER",
        reason: str | None = None,
    ) -> str:
        """Cancel some lines at once by ``role`` (BUYER, SYSTEM, OPERATOR or SELLER)."""
        if role not in ("BUYER", "SYSTEM", "OPERATOR", "SELLER"):
            raise ValueError("role must be BUYER, SYSTEM, OPERATOR or SELLER")
        with self._lock:
            order = self._live(order_id)
            if role == "BUYER":
                return self.buyer_cancel(order_id, line_ids=line_ids, reason=reason)
            defaults = {"SYSTEM": SYSTEM_REASONS[1], "OPERATOR": OPERATOR_REASONS[0]}
            if role == "SELLER" and reason is None:
                raise ValueError("a seller cancel needs a reason key")
            return self._cancel(order, line_ids, role, reason or defaults[role])

    def seller_center_cancel(
        self, order_id: str, reason: str, *, line_ids: Sequence[str] | None = None
    ) -> str:
        """The seller cancels in Seller Center (role SELLER, not made by our client)."""
        with self._lock:
            order = self._live(order_id)
            market = self._world.shops[order.shop_id].market.code
            if reason not in seller_keys_for_market(market):
                raise ValueError(f"{reason!r} is not a seller reason in {market}")
            return self._cancel(order, line_ids, "SELLER", reason, unshipped=True)

    # ------------------------------------------------------------------ time, faults

    def tick(self) -> None:
        """Run the lazy moves now (every request does this anyway)."""
        with self._lock:
            self._world.tick()

    def backdate(self, record_id: str, seconds: int) -> None:
        """Move an order's or cancellation's update_time back (a late event)."""
        with self._lock:
            self._world.backdate(record_id, seconds)

    def retire_reason(self, key: str) -> None:
        """Seller cancels with ``key`` now answer 25001020 (reason retired)."""
        with self._lock:
            self._world.retired_reasons.add(key)

    def replace_reason(self, old_key: str, new_key: str) -> None:
        """The platform now takes ``new_key`` where §5.4's table has ``old_key``.

        Seller cancels with ``old_key`` answer 25001020 (retired); ``new_key`` is accepted
        for the same statuses and aftersale eligibility lists it in ``old_key``'s place,
        with ``old_key``'s family (stock, line-level cancels). This is how a shop's accepted
        keys drift from a built-in table: the reference says to prefer eligibility's
        ``available_reason_names`` and the 202602 Cancel Order doc says to pass a name from
        that list verbatim (reference §5.4; issue 8).
        """
        if not new_key or new_key == old_key:
            raise ValueError("replace_reason needs a new, different key")
        with self._lock:
            self._world.replaced_reasons[old_key] = new_key

    def fail_order_detail(
        self,
        order_id: str,
        code: int = 12052900,
        message: str = "sandbox: this order cannot be read",
    ) -> None:
        """Get Order Detail answers ``code`` for every call whose ``ids`` hold this order.

        One bad order then fails a whole batched read, the way an unexpected per-order
        error would (issue 8). The default code is one cancelsync does not know.
        """
        with self._lock:
            self._world.order_of(order_id)
            self._world.failing_orders[order_id] = (code, message)

    def heal_order_detail(self, order_id: str) -> None:
        """Undo ``fail_order_detail``."""
        with self._lock:
            self._world.failing_orders.pop(order_id, None)

    def zeroed_skus(self, shop_id: str) -> set[str]:
        """SKUs whose TikTok stock an out-of-stock seller cancel set to 0."""
        with self._lock:
            return {sku for shop, sku in self._world.zeroed_skus if shop == shop_id}

    # ------------------------------------------------------------------ helpers

    def _live(self, order_id: str, allowed: Sequence[str] | None = None) -> Order:
        self._world.tick()
        order = self._world.order_of(order_id)
        if order.status in ("CANCELLED", "COMPLETED"):
            raise ValueError(f"order {order_id} is {order.status}")
        if allowed is not None and order.status not in allowed:
            raise ValueError(
                f"order {order_id} is {order.status}, expected one of {allowed}"
            )
        return order

    def _pending(self, cancel_id: str) -> Cancellation:
        self._world.tick()
        record = self._world.cancellations[cancel_id]
        if record.status != PENDING:
            raise ValueError(
                f"cancellation {cancel_id} is {record.status}, not pending"
            )
        return record

    def _lines(
        self, order: Order, line_ids: Sequence[str] | None, *, unshipped: bool
    ) -> list[Line]:
        live = order.active_lines()
        if line_ids is None:
            lines = live
        else:
            wanted = set(line_ids)
            lines = [ln for ln in live if ln.line_id in wanted]
            if len(lines) != len(wanted):
                raise ValueError("line_ids must name live lines of the order")
        if unshipped and any(ln.shipped for ln in lines):
            raise ValueError("shipped lines cannot be cancelled this way")
        if not lines:
            raise ValueError("nothing left to cancel")
        return lines

    def _cancel(
        self,
        order: Order,
        line_ids: Sequence[str] | None,
        role: str,
        reason: str,
        *,
        unshipped: bool = False,
    ) -> str:
        world = self._world
        lines = self._lines(order, line_ids, unshipped=unshipped)
        record = world.cancel(
            order, lines, role=role, reason=reason, cancel_type="CANCEL"
        )
        pending = world.pending_request(order)
        if pending is not None and order.status == "CANCELLED":
            world.close_request(pending, WITHDRAWN)
        return record.cancel_id
