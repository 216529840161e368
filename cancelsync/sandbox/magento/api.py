"""Endpoint bodies of the simulated REST API: input conversion and reply shapes.

Inputs are converted the way Magento's ServiceInputProcessor does it: snake_case and
camelCase keys both work, numeric strings become numbers, anything else that does not
fit the declared type is a 400 ``The "%value" value's type is invalid...``. A JSON body
that is not an object is cast to an empty array, exactly like ``(array)`` in PHP.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from cancelsync.sandbox.common import SimRequest
from cancelsync.sandbox.magento.errors import (
    CONTENT_TYPE_EMPTY,
    CONTENT_TYPE_UNKNOWN,
    DECODING_ERROR,
    REQUIRED_FIELD,
    bad_request,
    invalid_type,
)
from cancelsync.sandbox.magento.models import Comment
from cancelsync.sandbox.magento.refund import RefundRequest
from cancelsync.sandbox.magento.search import (
    apply_input_limits,
    parse_search_criteria,
    run_search,
)
from cancelsync.sandbox.magento.state import MagentoState

_TRUE = ("1", "true")
_FALSE = ("0", "false", "")


def read_body(req: SimRequest) -> dict[str, Any]:
    """The JSON body as a dict; an empty body is ``{}`` (``getBodyParams()``)."""
    if not req.body.strip():
        return {}
    content_type = req.headers.get("content-type", "").split(";")[0].strip().lower()
    if not content_type:
        raise bad_request(CONTENT_TYPE_EMPTY)
    if content_type not in ("application/json", "text/json"):
        raise bad_request(CONTENT_TYPE_UNKNOWN, [content_type])
    try:
        data = json.loads(req.body.decode("utf-8"))
    except ValueError:
        raise bad_request(DECODING_ERROR) from None
    return data if isinstance(data, dict) else {}


def pick(data: dict[str, Any], camel: str, snake: str) -> Any:
    return data.get(camel, data.get(snake))


def to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise invalid_type(value, "int")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            pass
        else:
            if number.is_integer():
                return int(number)
    raise invalid_type("Array" if isinstance(value, dict | list) else value, "int")


def to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise invalid_type(value, "float")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            pass
    raise invalid_type("Array" if isinstance(value, dict | list) else value, "float")


def to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise invalid_type("Array" if isinstance(value, dict | list) else value, "bool")


def _optional_float(value: Any) -> float | None:
    return None if value is None else to_float(value)


def _object(value: Any, type_name: str) -> dict[str, Any]:
    """An object argument; PHP's ``[]`` (empty array) counts as an empty object."""
    if value is None or value == []:
        return {}
    if not isinstance(value, dict):
        raise invalid_type(value, type_name)
    return value


def parse_refund_body(data: dict[str, Any]) -> RefundRequest:
    """Convert the refund body (every key optional) into a ``RefundRequest``."""
    request = RefundRequest()
    raw_items = data.get("items")
    if raw_items is not None:
        if isinstance(raw_items, dict):
            raw_items = list(raw_items.values())
        if not isinstance(raw_items, list):
            raise invalid_type(
                raw_items,
                "Magento\\Sales\\Api\\Data\\CreditmemoItemCreationInterface[]",
            )
        for raw in raw_items:
            entry = _object(
                raw, "Magento\\Sales\\Api\\Data\\CreditmemoItemCreationInterface"
            )
            item_id = to_int(pick(entry, "orderItemId", "order_item_id") or 0)
            request.items.append((item_id, to_float(entry.get("qty") or 0)))
    if data.get("notify") is not None:
        request.notify = to_bool(data["notify"])
    append = pick(data, "appendComment", "append_comment")
    if append is not None:
        request.append_comment = to_bool(append)
    comment = data.get("comment")
    if comment is not None:
        entry = _object(
            comment, "Magento\\Sales\\Api\\Data\\CreditmemoCommentCreationInterface"
        )
        text = entry.get("comment")
        request.comment = "" if text is None else str(text)
        visible = pick(entry, "isVisibleOnFront", "is_visible_on_front")
        request.comment_visible_on_front = 0 if visible is None else to_int(visible)
    arguments = _object(
        data.get("arguments"),
        "Magento\\Sales\\Api\\Data\\CreditmemoCreationArgumentsInterface",
    )
    request.shipping_amount = _optional_float(
        pick(arguments, "shippingAmount", "shipping_amount")
    )
    request.adjustment_positive = _optional_float(
        pick(arguments, "adjustmentPositive", "adjustment_positive")
    )
    request.adjustment_negative = _optional_float(
        pick(arguments, "adjustmentNegative", "adjustment_negative")
    )
    extension = _object(
        pick(arguments, "extensionAttributes", "extension_attributes"),
        "Magento\\Sales\\Api\\Data\\CreditmemoCreationArgumentsExtensionInterface",
    )
    returned = pick(extension, "returnToStockItems", "return_to_stock_items")
    if returned is not None:
        if not isinstance(returned, list):
            raise invalid_type(returned, "int[]")
        request.return_to_stock_items = [to_int(v) for v in returned]
    return request


def _comment_fields(entry: dict[str, Any]) -> tuple[str | None, int | None, int]:
    text = entry.get("comment")
    notified = pick(entry, "isCustomerNotified", "is_customer_notified")
    visible = pick(entry, "isVisibleOnFront", "is_visible_on_front")
    return (
        None if text is None else str(text),
        None if notified is None else to_int(notified),
        0 if visible is None else to_int(visible),
    )


def add_order_comment(state: MagentoState, order_id: int, data: dict[str, Any]) -> bool:
    """``POST orders/{id}/comments`` with ``{"statusHistory": {...}}``; answers true."""
    raw = pick(data, "statusHistory", "status_history")
    if raw is None:
        raise bad_request(REQUIRED_FIELD, {"fieldName": "statusHistory"})
    entry = _object(raw, "Magento\\Sales\\Api\\Data\\OrderStatusHistoryInterface")
    text, notified, visible = _comment_fields(entry)
    status = entry.get("status")
    state.add_order_comment(
        order_id,
        text,
        is_customer_notified=notified,
        is_visible_on_front=visible,
        status=None if status in (None, "") else str(status),
    )
    return True


def add_memo_comment(state: MagentoState, data: dict[str, Any]) -> dict[str, Any]:
    """``POST creditmemo/{id}/comments``: the parent is ``entity.parent_id``."""
    raw = data.get("entity")
    if raw is None:
        raise bad_request(REQUIRED_FIELD, {"fieldName": "entity"})
    entry = _object(raw, "Magento\\Sales\\Api\\Data\\CreditmemoCommentInterface")
    text, notified, visible = _comment_fields(entry)
    parent = pick(entry, "parentId", "parent_id")
    saved = state.add_memo_comment(
        None if parent is None else to_int(parent),
        text,
        is_customer_notified=notified,
        is_visible_on_front=visible,
    )
    return saved.to_json()


def comment_list(parent_id: int, comments: Sequence[Comment]) -> dict[str, Any]:
    """A ``getCommentsList`` search result: filtered by parent id, never a 404."""
    criteria = {
        "filter_groups": [
            {
                "filters": [
                    {
                        "field": "parent_id",
                        "value": str(parent_id),
                        "condition_type": "eq",
                    }
                ]
            }
        ]
    }
    items = [c.to_json() for c in sorted(comments, key=lambda c: c.entity_id)]
    return {"items": items, "search_criteria": criteria, "total_count": len(items)}


def search_orders(
    state: MagentoState, query: Sequence[tuple[str, str]], *, input_limit: bool
) -> dict[str, Any]:
    criteria = parse_search_criteria(query)
    apply_input_limits(criteria, enabled=input_limit)
    rows = [(o.row(), o) for _, o in sorted(state.orders.items())]
    page, total = run_search(rows, criteria, state.order_columns())
    return {
        "items": [o.to_json() for o in page],
        "search_criteria": criteria.echo(),
        "total_count": total,
    }


def search_memos(
    state: MagentoState, query: Sequence[tuple[str, str]], *, input_limit: bool
) -> dict[str, Any]:
    criteria = parse_search_criteria(query)
    apply_input_limits(criteria, enabled=input_limit)
    rows = [(m.row(), m) for _, m in sorted(state.memos.items())]
    page, total = run_search(rows, criteria, state.memo_columns())
    return {
        "items": [m.to_json() for m in page],
        "search_criteria": criteria.echo(),
        "total_count": total,
    }
