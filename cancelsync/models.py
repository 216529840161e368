"""Domain types the mappers produce at the client edge and the rules consume.

Money and quantities are ``Decimal`` (never float); timestamps are aware UTC datetimes.
Names say which system an id belongs to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Unreadable:
    """A list item the mapper could not read: kept so it is reported, never dropped."""

    item_id: str | None  # the platform's id for it, when even that much was readable
    error: str
    # Where it sits in its stream, when known: a TikTok ``update_time`` (Unix seconds), or
    # for a Magento keyset row the ``entity_id`` just below it. A cursor held here
    # re-reads the item (an item without an id cannot be recorded, so it must be re-read).
    position: int | None = None


class Page(list[T]):
    """One page of mapped items, plus the items that could not be mapped."""

    def __init__(
        self, items: list[T], unreadable: list[Unreadable] | None = None
    ) -> None:
        super().__init__(items)
        self.unreadable: list[Unreadable] = unreadable or []


# ----------------------------------------------------------------------------- TikTok


@dataclass(frozen=True)
class TikTokShop:
    tiktok_shop_id: str
    name: str
    region: str
    cipher: str
    seller_type: str = ""
    code: str = ""


@dataclass(frozen=True)
class TokenGrant:
    """A token reply; ``*_expire_at`` are absolute Unix seconds (TikTok's ``*_expire_in``)."""

    access_token: str
    access_token_expire_at: int
    refresh_token: str
    refresh_token_expire_at: int
    open_id: str = ""
    seller_name: str = ""
    seller_base_region: str = ""


@dataclass(frozen=True)
class TokenPair:
    """The TikTok token pair a store holds (the token manager rotates it, the store keeps it)."""

    access_token: str
    refresh_token: str
    access_token_expire_at: int | None = None  # Unix seconds (TikTok's *_expire_in)
    refresh_token_expire_at: int | None = None
    auth_status: str = "ok"  # ok | reauthorize
    auth_error: str | None = None


@dataclass(frozen=True)
class TikTokLine:
    """One order line; TikTok has one line per unit and no quantity field."""

    line_id: str
    sku_id: str
    seller_sku: str
    display_status: str
    sale_price: Decimal = Decimal("0")
    cancel_user: str = ""
    product_name: str = ""

    @property
    def cancelled(self) -> bool:
        return self.display_status == "CANCELLED"


@dataclass(frozen=True)
class TikTokOrder:
    tiktok_order_id: str
    status: str
    update_time: datetime
    lines: tuple[TikTokLine, ...] = ()
    cancel_time: datetime | None = None
    cancellation_initiator: str = ""
    # A buyer's cancellation request awaits the seller; None: the reply did not say.
    is_buyer_request_cancel: bool | None = False
    currency: str = ""
    total_amount: Decimal | None = None
    shipping_fee: Decimal | None = None


@dataclass(frozen=True)
class TikTokCancelLine:
    cancel_line_item_id: str
    order_line_item_id: str
    sku_id: str
    seller_sku: str
    refund_amount: Decimal | None = None


@dataclass(frozen=True)
class TikTokCancellation:
    cancel_id: str
    tiktok_order_id: str
    cancel_type: str  # CANCEL | BUYER_CANCEL
    cancel_status: (
        str  # CANCELLATION_REQUEST_PENDING / _SUCCESS / _CANCEL(LED) / _COMPLETE
    )
    role: str  # BUYER | SELLER | SYSTEM | OPERATOR
    create_time: datetime
    update_time: datetime
    cancel_reason: str = ""
    lines: tuple[TikTokCancelLine, ...] = ()
    refund_total: Decimal | None = None
    currency: str = ""
    seller_action_deadline: datetime | None = None

    @property
    def accepted(self) -> bool:
        """TikTok has accepted it (the cancel took effect)."""
        return self.cancel_status in (
            "CANCELLATION_REQUEST_SUCCESS",
            "CANCELLATION_REQUEST_COMPLETE",
        )

    @property
    def pending(self) -> bool:
        return self.cancel_status == "CANCELLATION_REQUEST_PENDING"


# ----------------------------------------------------------------------------- Magento


@dataclass(frozen=True)
class MagentoItem:
    item_id: int
    sku: str
    product_type: str
    qty_ordered: Decimal
    qty_invoiced: Decimal
    qty_refunded: Decimal
    qty_shipped: Decimal = Decimal("0")
    qty_canceled: Decimal = Decimal("0")
    parent_item_id: int | None = None
    price: Decimal = Decimal("0")
    row_total: Decimal | None = None
    tax_amount: Decimal = Decimal("0")
    discount_amount: Decimal = Decimal("0")

    @property
    def refundable_qty(self) -> Decimal:
        return self.qty_invoiced - self.qty_refunded

    @property
    def unit_refund_value(self) -> Decimal:
        """What Magento refunds per unit: row total plus tax, less discount, per unit."""
        if self.row_total is None or self.qty_ordered <= 0:
            return self.price
        net = self.row_total + self.tax_amount - abs(self.discount_amount)
        return net / self.qty_ordered


@dataclass(frozen=True)
class MagentoOrder:
    magento_entity_id: int
    magento_increment_id: str
    state: str
    status: str
    store_id: int | None
    tiktok_order_id: str | None
    items: tuple[MagentoItem, ...]
    grand_total: Decimal = Decimal("0")
    total_paid: Decimal = Decimal("0")
    total_invoiced: Decimal = Decimal("0")
    total_refunded: Decimal = Decimal("0")
    shipping_amount: Decimal = Decimal("0")  # order currency, tax excluded
    shipping_refunded: Decimal = Decimal("0")
    comments: tuple[str, ...] = ()
    created_at: datetime | None = None
    shipping_tax_amount: Decimal = Decimal("0")
    shipping_tax_refunded: Decimal = Decimal("0")

    @property
    def shipping_left(self) -> Decimal:
        """Shipping not yet refunded, its tax included (order currency).

        What Magento refunds when a refund leaves ``shipping_amount`` out.
        """
        left = self.shipping_amount - self.shipping_refunded
        tax_left = self.shipping_tax_amount - self.shipping_tax_refunded
        return max(left, Decimal("0")) + max(tax_left, Decimal("0"))

    def item(self, item_id: int) -> MagentoItem | None:
        for it in self.items:
            if it.item_id == item_id:
                return it
        return None

    def children_of(self, item_id: int) -> tuple[MagentoItem, ...]:
        return tuple(it for it in self.items if it.parent_item_id == item_id)

    @property
    def top_level_items(self) -> tuple[MagentoItem, ...]:
        """Rows without a parent: plain simples, configurable and bundle parents."""
        return tuple(it for it in self.items if it.parent_item_id is None)

    def priced_by_children(self, item: MagentoItem) -> bool:
        """A dynamic-price bundle: its children carry the price and the refund qty.

        REST order items lack ``product_options.product_calculations``, so this reads
        where the price sits: a fixed-price bundle's children are priced 0, a dynamic
        one's children carry their own prices (its parent shows their sum).
        """
        return item.product_type == "bundle" and any(
            child.price != 0 or (child.row_total or 0) != 0
            for child in self.children_of(item.item_id)
        )

    def qty_per_parent(self, child: MagentoItem) -> Decimal:
        """How many units of ``child`` one unit of its parent holds (a bundle's qty)."""
        parent = self.item(child.parent_item_id) if child.parent_item_id else None
        if parent is None or parent.qty_ordered <= 0:
            return Decimal("1")
        return child.qty_ordered / parent.qty_ordered

    def bundles_left(self, parent: MagentoItem) -> Decimal:
        """Whole units of a dynamic-price bundle still refundable, by its children.

        The parent row's ``qty_refunded`` cannot tell: Magento adds the parent's whole
        invoiced qty to it on every refund of its children.
        """
        children = self.children_of(parent.item_id)
        if not children:
            return Decimal("0")
        return min(
            (c.refundable_qty / self.qty_per_parent(c)).to_integral_value(ROUND_FLOOR)
            for c in children
        )

    @property
    def refund_rows(self) -> tuple[MagentoItem, ...]:
        """The rows a refund lists by qty: the top-level rows, except that a
        dynamic-price bundle is refunded through its children (``canRefundItem``)."""
        rows: list[MagentoItem] = []
        for it in self.top_level_items:
            if self.priced_by_children(it):
                rows.extend(self.children_of(it.item_id))
            else:
                rows.append(it)
        return tuple(rows)


@dataclass(frozen=True)
class MagentoCreditMemoItem:
    order_item_id: int
    sku: str
    qty: Decimal


@dataclass(frozen=True)
class MagentoCreditMemo:
    magento_creditmemo_id: int
    magento_entity_id: int  # the order's entity_id (``order_id`` in Magento's payload)
    created_at: datetime | None
    store_id: int | None = None
    magento_increment_id: str = ""  # the memo's own increment id
    grand_total: Decimal = Decimal("0")
    shipping_amount: Decimal = Decimal("0")
    items: tuple[MagentoCreditMemoItem, ...] = ()
    comments: tuple[str, ...] = field(default=())
