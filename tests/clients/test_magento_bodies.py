"""The pure refund body builder: what Magento receives, and what it must never get."""

from __future__ import annotations

from decimal import Decimal

import pytest

from cancelsync.clients.magento.bodies import json_number, refund_body


def test_whole_order_body_leaves_shipping_out() -> None:
    """shipping_amount None leaves the key out: Magento refunds all that is left."""
    body = refund_body(
        items=[(10, Decimal("2")), (12, Decimal("0.5"))],
        shipping_amount=None,
        return_to_stock_items=[10, 11],
        comment="cancelsync [cancelsync:42]",
    )
    assert body == {
        "items": [{"order_item_id": 10, "qty": 2}, {"order_item_id": 12, "qty": 0.5}],
        "notify": False,
        "appendComment": True,
        "arguments": {
            "adjustment_positive": 0,
            "adjustment_negative": 0,
            "extension_attributes": {"return_to_stock_items": [10, 11]},
        },
        "comment": {"comment": "cancelsync [cancelsync:42]", "is_visible_on_front": 0},
    }


def test_partial_body_sends_zero_shipping_and_no_restock() -> None:
    """A partial refund sends shipping 0 and lists no restock ids when there are none."""
    body = refund_body(
        items=[(10, Decimal("1"))],
        shipping_amount=Decimal("0"),
        return_to_stock_items=[],
        comment="",
    )
    assert body["arguments"] == {
        "shipping_amount": 0,
        "adjustment_positive": 0,
        "adjustment_negative": 0,
    }
    assert "comment" not in body


@pytest.mark.parametrize(
    ("items", "shipping", "message"),
    [
        ([], None, "needs items"),
        ([(10, Decimal("1")), (10, Decimal("1"))], None, "listed twice"),
        ([(10, Decimal("0"))], None, "must be positive"),
        ([(10, Decimal("-1"))], None, "must be positive"),
        ([(10, Decimal("1"))], Decimal("-0.01"), "must not be negative"),
    ],
)
def test_bodies_magento_would_misread_are_refused(
    items: list[tuple[int, Decimal]], shipping: Decimal | None, message: str
) -> None:
    """An empty item list (Magento refunds everything) and bad numbers never leave."""
    with pytest.raises(ValueError, match=message):
        refund_body(
            items=items,
            shipping_amount=shipping,
            return_to_stock_items=[],
            comment="",
        )


def test_json_number_keeps_integers_integral() -> None:
    """Whole Decimals become ints, others floats."""
    assert json_number(Decimal("3.000")) == 3
    assert isinstance(json_number(Decimal("3.000")), int)
    assert json_number(Decimal("1.25")) == 1.25


def test_a_superscript_digit_is_not_an_id() -> None:
    """'²' passes str.isdigit but int() refuses it: a refund reply like that is not an
    id (the caller treats the outcome as unknown), never a crash of the run."""
    from cancelsync.clients.magento.client import _as_id

    assert _as_id("²") is None
    assert _as_id(" 17 ") == 17
