"""Seller-side cancellation calls of the TikTok Shop simulator (reference §5).

Seller cancel with its error table (§5.7), approve/reject of a buyer's request, the
reject reason list and aftersale eligibility. Each function takes the world and the shop
the request's ``shop_cipher`` resolved to, and returns the reply's ``data``.
"""

from __future__ import annotations

from typing import Any

from cancelsync.sandbox.tiktok import errors as E
from cancelsync.sandbox.tiktok.errors import ApiError
from cancelsync.sandbox.tiktok.reasons import (
    BUYER_REASONS_PAID,
    BUYER_REASONS_UNPAID,
    NON_SELLER_KEYS,
    PARTIAL_CANCEL_MARKETS,
    is_out_of_stock,
    reason_text,
    reject_reasons,
)
from cancelsync.sandbox.tiktok.state import (
    PENDING,
    SHIPPED_STATUSES,
    WITHDRAWN,
    Line,
    Order,
    Shop,
)
from cancelsync.sandbox.tiktok.world import World

SELLER_CANCELLABLE = frozenset({"UNPAID", "ON_HOLD", "AWAITING_SHIPMENT"})
REQUEST_TYPES = ("CANCEL", "REFUND", "RETURN_AND_REFUND")


def _bad(message: str) -> ApiError:
    return ApiError(E.CANCEL_INVALID_PARAM, f"Invalid parameter: {message}")


def _shop_order(world: World, shop: Shop, order_id: Any) -> Order:
    order = world.orders.get(order_id) if isinstance(order_id, str) else None
    if order is None or order.shop_id != shop.shop_id:
        raise _bad(f"order {order_id} does not exist in this shop")
    return order


def seller_cancel(world: World, shop: Shop, body: Any, version: str) -> dict[str, Any]:
    """POST /return_refund/{v}/cancellations: a whole order, or (US/UK) some lines."""
    if not isinstance(body, dict):
        raise _bad("the body must be a JSON object")
    order_id, reason = body.get("order_id"), body.get("cancel_reason")
    if not isinstance(order_id, str) or not order_id:
        raise _bad("order_id is required")
    if not isinstance(reason, str) or not reason:
        raise _bad("cancel_reason is required")
    kinds = [
        k for k in ("skus", "order_line_item_ids", "order_line_list") if body.get(k)
    ]
    if "order_line_list" in kinds and version < "202602":
        raise _bad("order_line_list needs version 202602")
    if len(kinds) > 1:
        raise _bad("send only one of skus, order_line_item_ids, order_line_list")
    order = _shop_order(world, shop, order_id)
    market = shop.market.code

    if order.status == "CANCELLED":
        if order.cancellation_initiator == "SELLER":
            raise ApiError(
                E.CANCEL_IN_PROGRESS, "The order has already been cancelled."
            )
        raise ApiError(E.COMPLETED_OR_CANCELLED, "The order is already cancelled.")
    if order.status == "COMPLETED":
        raise ApiError(E.COMPLETED_OR_CANCELLED, "The order is completed.")
    if world.pending_request(order) is not None:
        raise ApiError(
            E.CANCEL_IN_PROGRESS,
            "A cancellation request is already in progress for this order.",
        )
    partial_shipping = order.status == "PARTIALLY_SHIPPING" and kinds
    if order.status in SHIPPED_STATUSES and not partial_shipping:
        raise ApiError(
            E.ALREADY_SHIPPED, "The order has been shipped and cannot be cancelled."
        )

    if reason in world.retired_reasons or reason in world.replaced_reasons:
        raise ApiError(
            E.REASON_RETIRED, f"The cancel reason {reason} is no longer available."
        )
    if reason in NON_SELLER_KEYS:
        raise ApiError(
            E.REASON_NOT_FOR_SELLER, f"The cancel reason {reason} is not for sellers."
        )
    if reason not in world.seller_keys(market):
        raise ApiError(
            E.UNKNOWN_REASON, f"Unknown cancel reason {reason} for market {market}."
        )
    if reason not in world.seller_reasons(market, order.status):
        raise ApiError(
            E.REASON_STATUS_MISMATCH,
            f"The cancel reason {reason} does not match the order status "
            f"{order.status}.",
        )

    out_of_stock = is_out_of_stock(world.table_key(reason))
    lines = order.active_lines()
    if kinds:
        if market not in PARTIAL_CANCEL_MARKETS or not out_of_stock:
            raise ApiError(
                E.LINES_NOT_CANCELLABLE,
                "Item-level cancellation is only available in the US and UK "
                "with an out-of-stock reason.",
            )
        lines = _select_lines(order, kinds[0], body[kinds[0]])
        if any(ln.shipped for ln in lines):
            raise ApiError(E.ALREADY_SHIPPED, "Some of the items have been shipped.")

    record = world.cancel(
        order, lines, role="SELLER", reason=reason, cancel_type="CANCEL"
    )
    if out_of_stock:
        world.zeroed_skus.update((shop.shop_id, ln.sku_id) for ln in lines)
    return {
        "cancel_id": record.cancel_id,
        "cancel_status": "CANCELLATION_REQUEST_SUCCESS",
    }


def _select_lines(order: Order, kind: str, value: Any) -> list[Line]:
    if not isinstance(value, list):
        raise _bad(f"{kind} must be a list")
    live = order.active_lines()
    chosen: list[Line] = []
    if kind == "skus":
        for entry in value:
            if not isinstance(entry, dict) or not isinstance(entry.get("sku_id"), str):
                raise _bad("skus[] needs sku_id and quantity")
            quantity = entry.get("quantity")
            if (
                not isinstance(quantity, int)
                or isinstance(quantity, bool)
                or quantity < 1
            ):
                raise _bad("skus[].quantity must be a positive integer")
            units = [
                ln for ln in live if ln.sku_id == entry["sku_id"] and ln not in chosen
            ]
            if len(units) < quantity:
                raise ApiError(
                    E.LINES_NOT_CANCELLABLE,
                    f"SKU {entry['sku_id']} has only {len(units)} cancellable unit(s).",
                )
            chosen.extend(units[:quantity])
        return chosen
    for entry in value:
        line_id = entry.get("order_line_item_id") if isinstance(entry, dict) else entry
        if not isinstance(line_id, str):
            raise _bad(f"{kind} holds an invalid line id")
        line = order.line(line_id)
        if line is None or line.cancelled:
            raise ApiError(
                E.LINES_NOT_CANCELLABLE, f"Line {line_id} cannot be cancelled."
            )
        if line not in chosen:
            chosen.append(line)
    return chosen


def decide(
    world: World,
    shop: Shop,
    cancel_id: str,
    action: str,
    idempotency_key: str | None,
    body: Any,
) -> dict[str, Any]:
    """Approve or reject a buyer's pending cancel request (replays on the same key)."""
    if idempotency_key is not None and not 0 < len(idempotency_key) <= 255:
        raise E.invalid_param("idempotency_key must be 1-255 characters")
    record = world.cancellations.get(cancel_id)
    if record is None or record.shop_id != shop.shop_id:
        raise _bad(f"cancellation {cancel_id} does not exist in this shop")
    if idempotency_key is not None and idempotency_key in record.decisions:
        if record.decisions[idempotency_key] != action:
            raise _bad("idempotency_key was already used for another action")
        return {}
    if record.cancel_type != "BUYER_CANCEL" or record.status != PENDING:
        raise _bad(
            f"cancellation {cancel_id} is not waiting for the seller ({record.status})"
        )
    if action == "reject":
        reason = body.get("reject_reason") if isinstance(body, dict) else None
        if not isinstance(reason, str) or not reason:
            raise _bad("reject_reason is required")
        if reason not in reject_reasons(shop.market.code):
            raise ApiError(E.UNKNOWN_REASON, f"Unknown reject reason {reason}.")
        world.close_request(record, WITHDRAWN)
    else:
        world.approve(record)
    if idempotency_key is not None:
        record.decisions[idempotency_key] = action
    return {}


def list_reject_reasons(
    world: World, shop: Shop, cancel_id: str | None, locale: str | None
) -> dict[str, Any]:
    """GET /return_refund/202309/reject_reasons."""
    if not cancel_id:
        raise E.invalid_param("return_or_cancel_id is required")
    record = world.cancellations.get(cancel_id)
    if record is None or record.shop_id != shop.shop_id:
        raise _bad(f"cancellation {cancel_id} does not exist in this shop")
    language = (locale or shop.market.language)[:2].lower()
    return {
        "reasons": [
            {"name": key, "text": reason_text(key, language)}
            for key in reject_reasons(shop.market.code)
        ]
    }


def eligibility(
    world: World, shop: Shop, order_id: str, query: dict[str, str], version: str
) -> dict[str, Any]:
    """GET /return_refund/{v}/orders/{order_id}/aftersale_eligibility."""
    user = query.get("initiate_aftersale_user")
    if user not in ("SELLER", "BUYER"):
        raise E.invalid_param("initiate_aftersale_user must be SELLER or BUYER")
    types = list(REQUEST_TYPES)
    if version >= "202512" and query.get("request_types"):
        types = [t.strip() for t in query["request_types"].split(",")]
        if any(t not in REQUEST_TYPES for t in types):
            raise E.invalid_param(
                f"request_types must be among {','.join(REQUEST_TYPES)}"
            )
    order = world.orders.get(order_id)
    if order is None or order.shop_id != shop.shop_id:
        raise _bad(f"order {order_id} does not exist in this shop")
    with_reasons = version >= "202512"
    skus: dict[str, list[Line]] = {}
    for line in order.lines:
        skus.setdefault(line.sku_id, []).append(line)
    result = []
    for sku_id, lines in skus.items():
        entries: list[dict[str, Any]] = []
        for request_type in types:
            groups: dict[tuple[bool, int, str, tuple[str, ...]], list[str]] = {}
            for line in lines:
                verdict = _line_verdict(world, shop, order, line, request_type, user)
                groups.setdefault(verdict, []).append(line.line_id)
            for (ok, code, why, names), line_ids in groups.items():
                entry: dict[str, Any] = {
                    "request_type": request_type,
                    "order_line_items_ids": line_ids,
                    "eligible": ok,
                }
                if not ok:
                    entry["ineligible_code"] = code
                    entry["ineligible_reason"] = why
                elif with_reasons:
                    entry["available_reason_names"] = list(names)
                entries.append(entry)
        result.append({"sku_id": sku_id, "line_item_eligibility": entries})
    return {"sku_eligibility": result}


def _line_verdict(
    world: World, shop: Shop, order: Order, line: Line, request_type: str, user: str
) -> tuple[bool, int, str, tuple[str, ...]]:
    if line.cancelled:
        return (False, E.COMPLETED_OR_CANCELLED, "the item is already cancelled", ())
    if request_type != "CANCEL":
        statuses = (
            ("DELIVERED",)
            if request_type == "RETURN_AND_REFUND"
            else ("AWAITING_COLLECTION", "IN_TRANSIT", "DELIVERED")
        )
        if line.shipped and (
            order.status in statuses or order.status == "PARTIALLY_SHIPPING"
        ):
            return (True, 0, "", ())
        return (False, E.CANCEL_INVALID_PARAM, "invalid order status", ())
    if world.pending_request(order) is not None:
        return (
            False,
            E.CANCEL_IN_PROGRESS,
            "a cancellation is already in progress",
            (),
        )
    if user == "BUYER":
        names: tuple[str, ...] = (
            BUYER_REASONS_UNPAID if order.status == "UNPAID" else BUYER_REASONS_PAID
        )
        ok = order.status in SELLER_CANCELLABLE or (
            order.status == "PARTIALLY_SHIPPING" and not line.shipped
        )
        return (
            (True, 0, "", names)
            if ok
            else (False, E.CANCEL_INVALID_PARAM, "invalid order status", ())
        )
    names = world.seller_reasons(shop.market.code, order.status)
    if order.status in SELLER_CANCELLABLE:
        return (True, 0, "", names)
    if (
        order.status == "PARTIALLY_SHIPPING"
        and not line.shipped
        and shop.market.code in PARTIAL_CANCEL_MARKETS
    ):
        return (
            True,
            0,
            "",
            tuple(k for k in names if is_out_of_stock(world.table_key(k))),
        )
    return (False, E.CANCEL_INVALID_PARAM, "invalid order status", ())
