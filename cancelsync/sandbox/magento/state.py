"""The store's tables and the operations that change them (not thread-safe on its own).

``MagentoState`` owns the id sequences, orders, credit memos (visible and pending), the
per-SKU salable stock and the comment tables. The simulator wraps every call in its
lock.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from datetime import UTC
from typing import Any

from cancelsync.clock import Clock
from cancelsync.sandbox.magento.errors import (
    CM_COMMENT_NOT_SAVED,
    COMMENT_BAD_STATUS,
    HOLD_NOT_AVAILABLE,
    UNHOLD_NOT_AVAILABLE,
    bad_request,
    money,
    not_found,
)
from cancelsync.sandbox.magento.models import (
    DEFAULT_STATUS,
    STATE_STATUSES,
    STOCK_TYPES,
    Comment,
    CreditMemo,
    MemoItem,
    OrderItem,
)
from cancelsync.sandbox.magento.order import Order
from cancelsync.sandbox.magento.refund import (
    RefundPlan,
    RefundRequest,
    apply_to_order,
    format_price,
    plan_refund,
    returned_to_stock,
    validate_refund,
)

_INT_COLUMNS = frozenset(
    {
        "entity_id",
        "store_id",
        "order_id",
        "invoice_id",
        "billing_address_id",
        "customer_is_guest",
        "customer_note_notify",
        "email_sent",
        "is_virtual",
        "total_item_count",
        "creditmemo_status",
    }
)
_MONEY_WORDS = (
    *("amount", "total", "refunded", "canceled", "invoiced", "paid", "due"),
    *("adjustment", "rate", "weight", "subtotal", "qty"),
)


def _column_kind(name: str, value: Any) -> str:
    if name in ("created_at", "updated_at"):
        return "datetime"
    if name in _INT_COLUMNS or (isinstance(value, int) and not isinstance(value, bool)):
        return "int"
    if isinstance(value, float) or (
        value is None and any(word in name for word in _MONEY_WORDS)
    ):
        return "decimal"
    return "text"


class MagentoState:
    """Orders, credit memos, stock and comments of one simulated installation."""

    def __init__(
        self,
        clock: Clock,
        *,
        currency: str,
        default_stock: float,
        base_currency: str = "",
        base_to_order_rate: float = 1.0,
    ) -> None:
        if base_to_order_rate <= 0:
            raise ValueError("base_to_order_rate must be positive")
        self.clock = clock
        self.currency = currency  # the order currency of imported orders
        self.base_currency = base_currency  # empty: the same as ``currency``
        self.base_to_order_rate = base_to_order_rate
        self.default_stock = default_stock
        self.orders: dict[int, Order] = {}
        self.memos: dict[int, CreditMemo] = {}
        self.pending: dict[int, tuple[RefundPlan, CreditMemo, bool]] = {}
        self.items: dict[int, OrderItem] = {}
        self.stock: dict[str, float] = {}
        self.extra_order_columns: set[str] = set()
        self._products: dict[str, int] = {}
        self._ids: dict[str, Iterator[int]] = {}
        self._increments: dict[tuple[str, int], Iterator[int]] = {}

    # ------------------------------------------------------------------ helpers
    def now(self) -> str:
        """Magento's UTC ``YYYY-MM-DD HH:MM:SS`` timestamp."""
        return self.clock.now().astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")

    def next_id(self, table: str) -> int:
        return next(self._ids.setdefault(table, itertools.count(1)))

    def increment_id(self, entity: str, store_id: int) -> str:
        number = next(
            self._increments.setdefault((entity, store_id), itertools.count(1))
        )
        prefix = str(store_id) if store_id > 1 else ""
        return f"{prefix}{number:09d}"

    def product_id(self, sku: str) -> int:
        if sku not in self._products:
            self._products[sku] = self.next_id("product")
        return self._products[sku]

    def get_order(self, order_id: int) -> Order:
        order = self.orders.get(order_id)
        if order is None:
            raise not_found()
        return order

    def get_memo(self, memo_id: int) -> CreditMemo:
        memo = self.memos.get(memo_id)
        if memo is None:
            raise not_found()  # pending memos are not committed, hence invisible
        return memo

    def add_stock(self, sku: str, qty: float) -> None:
        self.stock[sku] = self.stock.get(sku, self.default_stock) + qty

    def order_columns(self) -> dict[str, str]:
        template = Order(
            0, "", 0, "new", "pending", "", "", "", [], 0.0, 0.0, 0.0, "", "", "", ""
        )
        row = template.row()
        kinds = {name: _column_kind(name, value) for name, value in row.items()}
        for name in self.extra_order_columns:
            kinds.setdefault(name, "text")
        return kinds

    def memo_columns(self) -> dict[str, str]:
        template = CreditMemo(0, "", 0, 0, "", "", "", 0.0, 0.0, 0.0, 0.0, 0.0)
        return {
            name: _column_kind(name, value) for name, value in template.row().items()
        }

    # ----------------------------------------------------------------- orders
    def ship(self, order_id: int) -> None:
        order = self.get_order(order_id)
        if not order.can_ship():
            raise ValueError(
                f"order {order_id} has nothing to ship (state {order.state})"
            )
        for item in order.items:
            if item.is_dummy or item.product_type == "virtual":
                continue
            qty = item.qty_to_ship
            item.qty_shipped += qty
            for child in order.children_of(item):
                if child.is_dummy:
                    child.qty_shipped += qty * child.qty_per_parent
        if order.state == "new":
            order.state = "processing"  # the IN_PROGRESS argument of ShipOrder
        order.state = order.resolve_state()
        order.status = DEFAULT_STATUS[order.state]
        order.updated_at = self.now()

    def hold(self, order_id: int) -> None:
        """``OrderManagement::hold`` → ``Order::hold()`` (M2 ``Sales/Model/Order.php``):
        refused with "A hold action is not available." when ``canHold()`` is false
        (payment review, canceled, complete, closed or already holded); otherwise the
        state and status are kept in ``hold_before_*`` and become ``holded``. No status
        history comment is added (the REST call returns ``true`` and nothing else)."""
        order = self.get_order(order_id)
        if order.state in (
            "payment_review",
            "canceled",
            "complete",
            "closed",
            "holded",
        ):
            raise bad_request(HOLD_NOT_AVAILABLE)
        order.hold_before_state, order.hold_before_status = order.state, order.status
        order.state = order.status = "holded"
        order.updated_at = self.now()

    def unhold(self, order_id: int) -> None:
        """``Order::unhold()``: "You cannot remove the hold." unless ``canUnhold()``
        (state ``holded``); the ``hold_before_*`` state and status come back."""
        order = self.get_order(order_id)
        if order.state != "holded":
            raise bad_request(UNHOLD_NOT_AVAILABLE)
        order.state = order.hold_before_state or "processing"
        order.status = order.hold_before_status or DEFAULT_STATUS[order.state]
        order.hold_before_state = order.hold_before_status = None
        order.updated_at = self.now()

    def set_payment_review(self, order_id: int) -> None:
        order = self.get_order(order_id)
        order.state = order.status = "payment_review"
        order.updated_at = self.now()

    def cancel(self, order_id: int) -> bool:
        """OrderManagement::cancel(): ``False`` when canCancel() says no."""
        order = self.get_order(order_id)
        if not order.can_cancel():
            return False
        for item in order.items:
            if item.product_type in STOCK_TYPES:
                back = item.qty_ordered - max(item.qty_shipped, item.qty_invoiced)
                if back - item.qty_canceled > 0:
                    self.add_stock(item.sku, back - item.qty_canceled)
            item.qty_canceled += item.qty_to_cancel
        order.subtotal_canceled = money(
            order.subtotal - (order.subtotal_invoiced or 0.0)
        )
        order.shipping_canceled = money(
            order.shipping_amount - (order.shipping_invoiced or 0.0)
        )
        order.total_canceled = money(order.grand_total - (order.total_paid or 0.0))
        order.state = order.status = "canceled"
        order.updated_at = self.now()
        return True

    def add_order_comment(
        self,
        order_id: int,
        comment: str | None,
        *,
        is_customer_notified: int | None,
        is_visible_on_front: int,
        status: str | None,
    ) -> Comment:
        order = self.get_order(order_id)
        if status is not None:
            if status not in STATE_STATUSES.get(order.state, ()):
                raise bad_request(COMMENT_BAD_STATUS, [status])
            order.status = status
        entry = Comment(
            entity_id=self.next_id("order_history"),
            parent_id=order_id,
            comment=comment,
            created_at=self.now(),
            is_customer_notified=is_customer_notified,
            is_visible_on_front=is_visible_on_front,
            status=order.status,
            entity_name="order",
        )
        order.status_histories.append(entry)
        order.updated_at = self.now()
        return entry

    # ----------------------------------------------------------- credit memos
    def refund(
        self,
        order_id: int,
        request: RefundRequest,
        *,
        msi: bool,
        visible: bool = True,
        display_shipping_incl_tax: bool = False,
    ) -> int:
        """Run the refund rules; a non-visible memo waits for ``commit_pending()``."""
        order = self.get_order(order_id)
        plan = plan_refund(
            order, request, display_shipping_incl_tax=display_shipping_incl_tax
        )
        validate_refund(plan, self.items.get)
        memo = self._build_memo(plan)
        if visible:
            self._apply(plan, memo, msi)
        else:
            self.pending[memo.entity_id] = (plan, memo, msi)
        return memo.entity_id

    def commit_pending(self) -> list[int]:
        """Commit every pending memo in id order; returns their entity ids."""
        committed = sorted(self.pending)
        for memo_id in committed:
            plan, memo, msi = self.pending.pop(memo_id)
            self._apply(plan, memo, msi)
        return committed

    def _build_memo(self, plan: RefundPlan) -> CreditMemo:
        order, request = plan.order, plan.request
        memo_id = self.next_id("memo")
        stamp = self.now()  # stamped at transaction start, even if committed later
        notified = int(request.append_comment and request.notify)
        memo = CreditMemo(
            entity_id=memo_id,
            increment_id=self.increment_id("creditmemo", order.store_id),
            order_id=order.entity_id,
            store_id=order.store_id,
            created_at=stamp,
            updated_at=stamp,
            currency=order.currency,
            subtotal=plan.subtotal,
            shipping_amount=plan.shipping.amount,
            adjustment_positive=plan.adjustment_positive,
            adjustment_negative=plan.adjustment_negative,
            grand_total=plan.grand_total,
            base_currency=order.base_currency,
            base_to_order_rate=order.base_to_order_rate,
            shipping_incl_tax=plan.shipping.incl_tax,
            shipping_tax_amount=plan.tax.shipping_tax,
            tax_amount=plan.tax.tax,
            base={
                "subtotal": plan.base_subtotal,
                "shipping_amount": plan.shipping.base_amount,
                "shipping_incl_tax": plan.shipping.base_incl_tax,
                "shipping_tax_amount": plan.tax.base_shipping_tax,
                "tax_amount": plan.tax.base_tax,
                "grand_total": plan.base_grand_total,
            },
        )
        for line in plan.saved_lines:
            memo.items.append(
                MemoItem(
                    entity_id=self.next_id("memo_item"),
                    parent_id=memo_id,
                    order_item_id=line.item.item_id,
                    product_id=line.item.product_id,
                    sku=line.item.sku,
                    name=line.item.name,
                    qty=line.qty,
                    price=line.item.price,
                    row_total=line.row_total,
                    base_price=line.item.base_price,
                    base_row_total=line.base_row_total,
                )
            )
        if request.comment is not None:
            memo.customer_note = request.comment
            memo.customer_note_notify = notified
            memo.comments.append(
                Comment(
                    entity_id=self.next_id("memo_comment"),
                    parent_id=memo_id,
                    comment=request.comment,
                    created_at=stamp,
                    is_customer_notified=notified,
                    is_visible_on_front=request.comment_visible_on_front,
                )
            )
        return memo

    def _apply(self, plan: RefundPlan, memo: CreditMemo, msi: bool) -> None:
        order = plan.order
        apply_to_order(plan)
        stamp = self.now()
        order.updated_at = stamp
        for line in plan.saved_lines:
            line.item.updated_at = stamp
        # Payment::refund() formats the base amount in the base currency.
        amount = format_price(
            plan.base_grand_total, order.base_currency or order.currency
        )
        order.status_histories.append(
            Comment(
                entity_id=self.next_id("order_history"),
                parent_id=order.entity_id,
                comment=f"We refunded {amount} offline.",
                created_at=stamp,
                is_customer_notified=int(plan.request.notify),
                status=order.status,
                entity_name="creditmemo",
            )
        )
        for sku, qty in returned_to_stock(plan, msi=msi).items():
            self.add_stock(sku, qty)
        self.memos[memo.entity_id] = memo

    def add_memo_comment(
        self,
        parent_id: int | None,
        comment: str | None,
        *,
        is_customer_notified: int | None,
        is_visible_on_front: int,
    ) -> Comment:
        """CreditmemoCommentRepository::save(): the parent comes from the body."""
        memo = self.memos.get(parent_id) if parent_id is not None else None
        if memo is None:
            raise bad_request(CM_COMMENT_NOT_SAVED)
        entry = Comment(
            entity_id=self.next_id("memo_comment"),
            parent_id=memo.entity_id,
            comment=comment,
            created_at=self.now(),
            is_customer_notified=is_customer_notified,
            is_visible_on_front=is_visible_on_front,
        )
        memo.comments.append(entry)
        return entry

    def sku_rows(self, order: Order) -> Mapping[str, OrderItem]:
        """The refundable (non-child) row of each SKU, for scenario refunds by SKU."""
        return {i.sku: i for i in order.items if not i.is_dummy}
