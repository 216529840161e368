"""In-memory records of the TikTok Shop simulator and their JSON shapes.

Apps, shops, token grants, orders (one line per unit, as TikTok sends them) and
cancellation records are plain dataclasses; ``order_json`` and ``cancellation_json``
render them the way the 202309+ APIs do (reference §4, §5.5). Amounts are ``Decimal``
inside and decimal strings on the wire.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from cancelsync.sandbox.tiktok.reasons import Market, reason_text

ORDER_STATUSES = (
    "UNPAID",
    "ON_HOLD",
    "AWAITING_SHIPMENT",
    "PARTIALLY_SHIPPING",
    "AWAITING_COLLECTION",
    "IN_TRANSIT",
    "DELIVERED",
    "COMPLETED",
    "CANCELLED",
)
SHIPPED_STATUSES = frozenset(
    {"PARTIALLY_SHIPPING", "AWAITING_COLLECTION", "IN_TRANSIT", "DELIVERED"}
)
PENDING = "CANCELLATION_REQUEST_PENDING"
SUCCESS = "CANCELLATION_REQUEST_SUCCESS"
WITHDRAWN = "CANCELLATION_REQUEST_CANCEL"  # 202602 spells it ..._CANCELLED
COMPLETE = "CANCELLATION_REQUEST_COMPLETE"
CANCEL_STATUSES = (PENDING, SUCCESS, WITHDRAWN, COMPLETE)
SCOPES = (
    "seller.authorization.info",
    "seller.order.info",
    "seller.return_refund.basic",
)

_ZERO_DECIMAL_CURRENCIES = frozenset({"JPY", "IDR", "VND", "KRW"})


def money(amount: Decimal, currency: str) -> str:
    """A decimal string with the currency's usual number of places."""
    places = Decimal(1) if currency in _ZERO_DECIMAL_CURRENCIES else Decimal("0.01")
    return str(amount.quantize(places, rounding=ROUND_HALF_UP))


@dataclass
class App:
    """A Partner Center app: the key and the secret that signs every call."""

    app_key: str
    app_secret: str


@dataclass
class Shop:
    """A seller shop; ``cipher`` is what clients send as ``shop_cipher``."""

    shop_id: str
    name: str
    market: Market
    cipher: str
    seller_type: str
    code: str


@dataclass
class AuthCode:
    """A single-use code from the seller's consent page."""

    code: str
    app_key: str
    shop_ids: tuple[str, ...]
    scopes: tuple[str, ...]
    issued_at: int
    used: bool = False


@dataclass
class Grant:
    """One access/refresh token pair; a refresh supersedes it with a new grant."""

    app_key: str
    shop_ids: tuple[str, ...]
    scopes: tuple[str, ...]
    open_id: str
    access_token: str
    access_expire: int
    refresh_token: str
    refresh_expire: int
    superseded: bool = False


@dataclass
class Line:
    """One unit of one SKU in an order (TikTok has no quantity field)."""

    line_id: str
    sku_id: str
    seller_sku: str
    product_id: str
    product_name: str
    sku_name: str
    sale_price: Decimal
    original_price: Decimal
    is_gift: bool
    package_id: str
    display_status: str
    shipped: bool = False
    cancel_user: str | None = None
    cancel_reason: str | None = None  # a key; rendered as text

    @property
    def cancelled(self) -> bool:
        return self.display_status == "CANCELLED"


@dataclass
class Order:
    """One TikTok order and its unit lines."""

    order_id: str
    shop_id: str
    status: str
    currency: str
    shipping_fee: Decimal
    tax: Decimal
    create_time: int
    update_time: int
    buyer_user_id: str
    lines: list[Line]
    paid_time: int | None = None
    cancel_time: int | None = None
    cancellation_initiator: str | None = None
    is_buyer_request_cancel: bool = False
    request_cancel_time: int | None = None

    def line(self, line_id: str) -> Line | None:
        return next((ln for ln in self.lines if ln.line_id == line_id), None)

    def active_lines(self) -> list[Line]:
        return [ln for ln in self.lines if not ln.cancelled]

    @property
    def sub_total(self) -> Decimal:
        return sum((ln.sale_price for ln in self.lines), Decimal(0))


@dataclass
class Cancellation:
    """A cancellation record as search cancellations returns it."""

    cancel_id: str
    order_id: str
    shop_id: str
    cancel_type: str  # CANCEL | BUYER_CANCEL
    status: str
    role: str  # BUYER | SELLER | SYSTEM | OPERATOR
    reason: str  # the key
    create_time: int
    update_time: int
    line_ids: list[str]  # order line ids
    cancel_line_ids: list[str]  # one per order line id, same order
    refund_subtotal: Decimal = Decimal(0)
    refund_shipping_fee: Decimal = Decimal(0)
    refund_tax: Decimal = Decimal(0)
    deadline: int | None = None  # seller must answer a pending buyer request by then
    complete_at: int | None = None  # SUCCESS turns COMPLETE then (refund lag)
    should_replenish_stock: bool = True
    decisions: dict[str, str] = field(default_factory=dict)  # idempotency_key -> action

    @property
    def refund_total(self) -> Decimal:
        return self.refund_subtotal + self.refund_shipping_fee + self.refund_tax


def _allocate(total: Decimal, weights: list[Decimal], currency: str) -> list[Decimal]:
    """Split ``total`` over ``weights``; the last share takes the rounding rest."""
    if not weights:
        return []
    whole = sum(weights, Decimal(0))
    shares = []
    for weight in weights[:-1]:
        share = total * weight / whole if whole else Decimal(0)
        shares.append(Decimal(money(share, currency)))
    shares.append(total - sum(shares, Decimal(0)))
    return shares


def _drop_none(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _package_status(line: Line, order: Order) -> str:
    if line.cancelled:
        return "CANCELLED"
    if order.status in ("DELIVERED", "COMPLETED"):
        return "COMPLETED"
    return "FULFILLING" if line.shipped else "PROCESSING"


def line_json(line: Line, order: Order, language: str) -> dict[str, Any]:
    """One ``line_items[]`` entry (no quantity; a cancelled line says so in status)."""
    cur = order.currency
    paid = order.status != "UNPAID" or line.cancelled
    return _drop_none(
        {
            "id": line.line_id,
            "sku_id": line.sku_id,
            "seller_sku": line.seller_sku,
            "product_id": line.product_id,
            "product_name": line.product_name,
            "sku_name": line.sku_name,
            "sku_type": "NORMAL",
            "sale_price": money(line.sale_price, cur),
            "original_price": money(line.original_price, cur),
            "seller_discount": money(line.original_price - line.sale_price, cur),
            "platform_discount": money(Decimal(0), cur),
            "currency": cur,
            "display_status": line.display_status,
            "cancel_user": line.cancel_user,
            "cancel_reason": (
                reason_text(line.cancel_reason, language)
                if line.cancel_reason
                else None
            ),
            "package_id": line.package_id if paid else None,
            "package_status": _package_status(line, order) if paid else None,
            "is_gift": line.is_gift,
        }
    )


def order_json(order: Order, shop: Shop, version: str) -> dict[str, Any]:
    """One order as Get Order Detail / Search Orders render it."""
    cur = order.currency
    lang = shop.market.language
    original = sum((ln.original_price for ln in order.lines), Decimal(0))
    first_reason = next(
        (ln.cancel_reason for ln in order.lines if ln.cancel_reason), None
    )
    payment = {
        "currency": cur,
        "sub_total": money(order.sub_total, cur),
        "shipping_fee": money(order.shipping_fee, cur),
        "original_shipping_fee": money(order.shipping_fee, cur),
        "shipping_fee_seller_discount": money(Decimal(0), cur),
        "shipping_fee_platform_discount": money(Decimal(0), cur),
        "tax": money(order.tax, cur),
        "product_tax": money(order.tax, cur),
        "shipping_fee_tax": money(Decimal(0), cur),
        "original_total_product_price": money(original, cur),
        "seller_discount": money(original - order.sub_total, cur),
        "platform_discount": money(Decimal(0), cur),
        "total_amount": money(order.sub_total + order.shipping_fee + order.tax, cur),
    }
    paid = order.paid_time is not None
    body = {
        "id": order.order_id,
        "status": order.status,
        "create_time": order.create_time,
        "update_time": order.update_time,
        "paid_time": order.paid_time,
        "cancel_time": order.cancel_time,
        "cancellation_initiator": order.cancellation_initiator,
        "cancel_reason": reason_text(first_reason, lang) if first_reason else None,
        "is_buyer_request_cancel": order.is_buyer_request_cancel,
        "request_cancel_time": order.request_cancel_time,
        "cancel_order_sla_time": order.create_time + 3 * 86400 if paid else None,
        "shipping_due_time": (
            order.paid_time + 3 * 86400 if order.paid_time is not None else None
        ),
        "is_on_hold_order": order.status == "ON_HOLD",
        "user_id": order.buyer_user_id,
        "buyer_email": f"sandbox-{order.buyer_user_id[-6:]}@scs.tiktokw.us",
        "buyer_message": "",
        "shipping_type": "TIKTOK",
        "fulfillment_type": "FULFILLMENT_BY_SELLER",
        "delivery_type": "HOME_DELIVERY",
        "delivery_option_name": "Standard shipping",
        "payment_method_name": "Credit card",
        "is_cod": False,
        "is_sample_order": False,
        "is_replacement_order": False,
        "commerce_platform": "TIKTOK_SHOP",
        "order_type": "NORMAL",
        "warehouse_id": f"7{shop.shop_id[1:]}",
        "recipient_address": {
            "name": "Sandbox Buyer",
            "region_code": shop.market.region,
            "full_address": "1 Sandbox Street",
        },
        "payment": payment,
        "line_items": [line_json(ln, order, lang) for ln in order.lines],
    }
    if version >= "202507":
        body["packages"] = (
            [{"id": pid} for pid in sorted({ln.package_id for ln in order.lines})]
            if paid
            else []
        )
    return _drop_none(body)


def cancellation_json(
    record: Cancellation, order: Order, version: str, language: str
) -> dict[str, Any]:
    """One ``cancellations[]`` entry of Search Cancellations."""
    cur = order.currency
    role = record.role
    status = record.status
    if version < "202602":
        role = "SYSTEM" if role == "OPERATOR" else role  # OPERATOR is new in 202602
    elif status == WITHDRAWN:
        status = "CANCELLATION_REQUEST_CANCELLED"
    lines = []
    pairs = list(zip(record.line_ids, record.cancel_line_ids, strict=True))
    order_lines = [order.line(line_id) for line_id, _ in pairs]
    prices = [ln.sale_price if ln is not None else Decimal(0) for ln in order_lines]
    taxes = _allocate(record.refund_tax, prices, cur)
    fees = _allocate(record.refund_shipping_fee, prices, cur)
    for (line_id, cancel_line_id), line, tax, fee in zip(
        pairs, order_lines, taxes, fees, strict=True
    ):
        if line is None:  # pragma: no cover - lines are never deleted
            continue
        subtotal = line.sale_price if order.paid_time is not None else Decimal(0)
        lines.append(
            {
                "cancel_line_item_id": cancel_line_id,
                "order_line_item_id": line_id,
                "sku_id": line.sku_id,
                "seller_sku": line.seller_sku,
                "sku_name": line.sku_name,
                "product_name": line.product_name,
                "refund_amount": {
                    "currency": cur,
                    "refund_total": money(subtotal + tax + fee, cur),
                    "refund_subtotal": money(subtotal, cur),
                    "refund_shipping_fee": money(fee, cur),
                    "refund_tax": money(tax, cur),
                    "buyer_service_fee": money(Decimal(0), cur),
                },
            }
        )
    next_action = None
    if record.status == PENDING and record.deadline is not None:
        action = (
            "SELLER_RESPOND_CANCEL"
            if version < "202602"
            else "SELLER_RESPOND_BUYER_CANCEL"
        )
        next_action = [{"action": action, "deadline": record.deadline}]
    return _drop_none(
        {
            "cancel_id": record.cancel_id,
            "order_id": record.order_id,
            "cancel_type": record.cancel_type,
            "cancel_status": status,
            "role": role,
            "cancel_reason": record.reason,
            "cancel_reason_text": reason_text(record.reason, language),
            "create_time": record.create_time,
            "update_time": record.update_time,
            "seller_next_action_response": next_action,
            "refund_amount": {
                "currency": cur,
                "refund_total": money(record.refund_total, cur),
                "refund_subtotal": money(record.refund_subtotal, cur),
                "refund_shipping_fee": money(record.refund_shipping_fee, cur),
                "refund_tax": money(record.refund_tax, cur),
                "retail_delivery_fee": money(Decimal(0), cur),
                "buyer_service_fee": money(Decimal(0), cur),
            },
            "cancel_line_items": lines,
            "should_replenish_stock": record.should_replenish_stock,
        }
    )
