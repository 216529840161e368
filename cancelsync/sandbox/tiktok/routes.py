"""Read endpoints and token calls of the TikTok Shop simulator (reference §3-§5.5).

Token get/refresh (unsigned, auth host), authorized shops, order search and detail,
and cancellation search. Each handler parses and checks its own parameters the way the
reference describes and returns the reply's ``data``.
"""

from __future__ import annotations

import json
from typing import Any

from cancelsync.sandbox.tiktok import errors as E
from cancelsync.sandbox.tiktok.errors import ApiError
from cancelsync.sandbox.tiktok.paging import DataFaults, fingerprint, paginate
from cancelsync.sandbox.tiktok.state import (
    CANCEL_STATUSES,
    ORDER_STATUSES,
    WITHDRAWN,
    Cancellation,
    Grant,
    Order,
    Shop,
    cancellation_json,
    order_json,
)
from cancelsync.sandbox.tiktok.world import World

MAX_DETAIL_IDS = 50
_TIME_FILTERS = ("create_time_ge", "create_time_lt", "update_time_ge", "update_time_lt")


def parse_body(raw: bytes) -> dict[str, Any]:
    """The JSON object body (``{}`` when empty); 36009022 when it is not one."""
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ApiError(E.BAD_BODY, "Invalid request body: not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(E.BAD_BODY, "Invalid request body: expected a JSON object")
    return body


def _int_param(
    query: dict[str, str], name: str, low: int, high: int, default: int | None
) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        if default is None:
            raise E.invalid_param(f"{name} is required")
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise E.invalid_param(f"{name} must be an integer between {low} and {high}")
    return int(raw)


def _sorting(query: dict[str, str], default_order: str) -> tuple[str, bool]:
    field = query.get("sort_field") or "create_time"
    if field not in ("create_time", "update_time"):
        raise E.invalid_param("sort_field must be create_time or update_time")
    order = (query.get("sort_order") or default_order).upper()
    if order not in ("ASC", "DESC"):
        raise E.invalid_param("sort_order must be ASC or DESC")
    return field, order == "DESC"


def _time_filters(body: dict[str, Any]) -> dict[str, int]:
    found = {}
    for name in _TIME_FILTERS:
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise E.invalid_param(f"{name} must be a Unix timestamp in seconds")
        found[name] = value
    return found


def _in_window(create_time: int, update_time: int, window: dict[str, int]) -> bool:
    values = {"create_time": create_time, "update_time": update_time}
    for name, bound in window.items():
        field, op = name.rsplit("_", 1)
        value = values[field]
        if (op == "ge" and value < bound) or (op == "lt" and value >= bound):
            return False
    return True


def _str_list(body: dict[str, Any], name: str, limit: int = 100) -> list[str] | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise E.invalid_param(f"{name} must be a list of strings")
    if len(value) > limit:
        raise E.invalid_param(f"{name} accepts at most {limit} values")
    return value


# ---------------------------------------------------------------------- tokens


def token_data(world: World, grant: Grant) -> dict[str, Any]:
    first = world.shops[grant.shop_ids[0]] if grant.shop_ids else None
    return {
        "access_token": grant.access_token,
        "access_token_expire_in": grant.access_expire,
        "refresh_token": grant.refresh_token,
        "refresh_token_expire_in": grant.refresh_expire,
        "open_id": grant.open_id,
        "seller_name": first.name if first else "",
        "seller_base_region": first.market.region if first else "",
        "user_type": 0,
        "granted_scopes": list(grant.scopes),
    }


def token_get(world: World, query: dict[str, str]) -> dict[str, Any]:
    """GET /api/v2/token/get (auth host, unsigned)."""
    world.check_app(query.get("app_key", ""), query.get("app_secret", ""))
    if query.get("grant_type") != "authorized_code":
        raise E.invalid_param("grant_type must be authorized_code")
    grant = world.exchange_code(query.get("app_key", ""), query.get("auth_code", ""))
    return token_data(world, grant)


def token_refresh(world: World, query: dict[str, str]) -> dict[str, Any]:
    """GET /api/v2/token/refresh (auth host, unsigned): rotates both tokens."""
    world.check_app(query.get("app_key", ""), query.get("app_secret", ""))
    if query.get("grant_type") != "refresh_token":
        raise E.invalid_param("grant_type must be refresh_token")
    grant = world.refresh(query.get("app_key", ""), query.get("refresh_token", ""))
    return token_data(world, grant)


# ---------------------------------------------------------------------- shops, orders


def authorized_shops(world: World, grant: Grant) -> dict[str, Any]:
    """GET /authorization/202309/shops."""
    shops = [world.shops[s] for s in grant.shop_ids if s in world.shops]
    return {
        "shops": [
            {
                "id": s.shop_id,
                "name": s.name,
                "region": s.market.region,
                "seller_type": s.seller_type,
                "cipher": s.cipher,
                "code": s.code,
            }
            for s in shops
        ]
    }


def search_orders(
    world: World,
    shop: Shop,
    query: dict[str, str],
    body: dict[str, Any],
    faults: DataFaults,
) -> dict[str, Any]:
    """POST /order/202309/orders/search."""
    page_size = _int_param(query, "page_size", 1, 100, None)
    field, descending = _sorting(query, "DESC")
    by_update = field == "update_time"
    status = body.get("order_status")
    if status is not None and (
        not isinstance(status, str) or status not in ORDER_STATUSES
    ):
        raise E.invalid_param("order_status must be one order status")
    window = _time_filters(body)
    buyer_request = body.get("is_buyer_request_cancel")
    if buyer_request is not None and not isinstance(buyer_request, bool):
        raise E.invalid_param("is_buyer_request_cancel must be a boolean")
    buyer = body.get("buyer_user_id")
    _str_list(body, "warehouse_ids")

    def keep(order: Order) -> bool:
        return (
            order.shop_id == shop.shop_id
            and (status is None or order.status == status)
            and (
                buyer_request is None or order.is_buyer_request_cancel == buyer_request
            )
            and (buyer is None or order.buyer_user_id == buyer)
            and _in_window(order.create_time, order.update_time, window)
        )

    matches = [o for o in world.orders.values() if keep(o)]
    fp = fingerprint(
        "orders",
        shop.shop_id,
        {
            "s": status,
            "w": window,
            "b": buyer_request,
            "u": buyer,
            "f": field,
            "d": descending,
            "n": page_size,
        },
    )

    def key(order: Order) -> tuple[int, str]:
        return (order.update_time if by_update else order.create_time, order.order_id)

    page, token, total = paginate(
        matches,
        key=key,
        descending=descending,
        page_size=page_size,
        token=query.get("page_token"),
        fp=fp,
        faults=faults,
    )
    return {
        "orders": [order_json(o, shop, "202309") for o in page],
        "next_page_token": token,  # "" on the last page
        "total_count": total,
    }


def order_detail(
    world: World, shop: Shop, pairs: tuple[tuple[str, str], ...], version: str
) -> dict[str, Any]:
    """GET /order/{202309,202507}/orders?ids=a,b (one comma-joined param, <= 50)."""
    values = [v for k, v in pairs if k == "ids"]
    if not values:
        raise E.invalid_param("ids is required")
    if len(values) > 1:
        raise E.invalid_param("ids must be sent once, as one comma-joined value")
    ids = [i.strip() for i in values[0].split(",")]
    if any(not i for i in ids):
        raise E.invalid_param("ids holds an empty order id")
    if len(ids) > MAX_DETAIL_IDS:
        raise E.invalid_param(f"ids accepts at most {MAX_DETAIL_IDS} order ids")
    for order_id in ids:
        # One bad order fails the whole batch (see ``fail_order_detail``).
        if order_id in world.failing_orders:
            code, message = world.failing_orders[order_id]
            raise ApiError(code, message)
    found = [world.orders.get(i) for i in ids]
    return {
        "orders": [
            order_json(o, shop, version)
            for o in found
            if o is not None and o.shop_id == shop.shop_id
        ]
    }


# ---------------------------------------------------------------------- cancellations

_STATUS_ALIASES = {"CANCELLATION_REQUEST_CANCELLED": WITHDRAWN}


def search_cancellations(
    world: World,
    shop: Shop,
    query: dict[str, str],
    body: dict[str, Any],
    version: str,
    faults: DataFaults,
) -> dict[str, Any]:
    """POST /return_refund/{202309,202602}/cancellations/search."""
    page_size = _int_param(query, "page_size", 1, 50, 10)
    field, descending = _sorting(query, "ASC")
    by_update = field == "update_time"
    cancel_ids = _str_list(body, "cancel_ids", 50)
    order_ids = _str_list(body, "order_ids", 50)
    buyer_ids = _str_list(body, "buyer_user_ids", 50)
    types = _str_list(body, "cancel_types")
    if types is not None and any(t not in ("CANCEL", "BUYER_CANCEL") for t in types):
        raise E.invalid_param("cancel_types must be CANCEL or BUYER_CANCEL")
    statuses = _str_list(body, "cancel_status")
    if statuses is not None:
        statuses = [_STATUS_ALIASES.get(s, s) for s in statuses]
        if any(s not in CANCEL_STATUSES for s in statuses):
            raise E.invalid_param("cancel_status holds an unknown status")
    window = _time_filters(body)
    locale = body.get("locale")
    if locale is not None and not isinstance(locale, str):
        raise E.invalid_param("locale must be a string such as en-US")
    language = (locale or shop.market.language)[:2].lower()

    def keep(record: Cancellation) -> bool:
        order = world.orders[record.order_id]
        return (
            record.shop_id == shop.shop_id
            and (cancel_ids is None or record.cancel_id in cancel_ids)
            and (order_ids is None or record.order_id in order_ids)
            and (buyer_ids is None or order.buyer_user_id in buyer_ids)
            and (types is None or record.cancel_type in types)
            and (statuses is None or record.status in statuses)
            and _in_window(record.create_time, record.update_time, window)
        )

    matches = [c for c in world.cancellations.values() if keep(c)]
    fp = fingerprint(
        "cancellations",
        shop.shop_id,
        {
            "c": cancel_ids,
            "o": order_ids,
            "b": buyer_ids,
            "t": types,
            "s": statuses,
            "w": window,
            "f": field,
            "d": descending,
            "n": page_size,
            "v": version,
        },
    )

    def key(record: Cancellation) -> tuple[int, str]:
        stamp = record.update_time if by_update else record.create_time
        return (stamp, record.cancel_id)

    page, token, total = paginate(
        matches,
        key=key,
        descending=descending,
        page_size=page_size,
        token=query.get("page_token"),
        fp=fp,
        faults=faults,
    )
    data: dict[str, Any] = {
        "cancellations": [
            cancellation_json(c, world.orders[c.order_id], version, language)
            for c in page
        ],
        "total_count": total,
    }
    if token:  # absent on the last page (orders search sends "" instead)
        data["next_page_token"] = token
    return data
