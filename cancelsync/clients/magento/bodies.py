"""Pure builders of Magento request bodies (beside ``search``, the query builder).

No I/O: each function turns typed arguments into the JSON Magento expects, checking what
Magento would otherwise get wrong silently (an empty ``items`` list refunds everything).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any


def json_number(value: Decimal | int) -> int | float:
    """A Decimal as a JSON number (Magento's REST layer reads floats)."""
    value = Decimal(value)
    return int(value) if value == value.to_integral_value() else float(value)


def refund_body(
    *,
    items: Sequence[tuple[int, Decimal]],
    shipping_amount: Decimal | None,
    return_to_stock_items: Sequence[int],
    comment: str,
    notify: bool = False,
) -> dict[str, Any]:
    """The body of ``POST /V1/order/{id}/refund`` (top-level keys camelCase, nested
    ones snake_case, as Magento's interface declares them).

    Raises:
        ValueError: no items (Magento would refund every row), an item twice, a
            quantity that is not positive, or a negative shipping amount.
    """
    if not items:
        raise ValueError("refund_order needs items (Magento refunds all when empty)")
    seen: set[int] = set()
    lines = []
    for item_id, qty in items:
        if item_id in seen:
            raise ValueError(f"order item {item_id} listed twice in a refund")
        if qty <= 0:
            raise ValueError(f"refund qty for order item {item_id} must be positive")
        seen.add(item_id)
        lines.append({"order_item_id": int(item_id), "qty": json_number(qty)})
    arguments: dict[str, Any] = {}
    if shipping_amount is not None:
        if shipping_amount < 0:
            raise ValueError("shipping_amount must not be negative")
        arguments["shipping_amount"] = json_number(shipping_amount)
    arguments.update(adjustment_positive=0, adjustment_negative=0)
    if return_to_stock_items:
        arguments["extension_attributes"] = {
            "return_to_stock_items": [int(i) for i in return_to_stock_items]
        }
    body: dict[str, Any] = {
        "items": lines,
        "notify": bool(notify),
        "appendComment": bool(comment),
        "arguments": arguments,
    }
    if comment:
        body["comment"] = {"comment": comment, "is_visible_on_front": 0}
    return body
