"""Tests for the Magento JSON → model mapper on sanitized recordings."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from cancelsync.clients.magento.mapper import (
    comments_from_json,
    credit_memo_from_json,
    order_from_json,
    tiktok_order_id,
)
from cancelsync.errors import DataError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "magento"


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


def test_configurable_order_maps_parent_and_child_rows() -> None:
    """A configurable parent and its simple child become two linked items."""
    order = order_from_json(load("order_configurable.json"))
    assert order.magento_entity_id == 1042
    assert order.magento_increment_id == "000001042"
    assert (order.state, order.status, order.store_id) == (
        "processing",
        "processing",
        1,
    )
    assert order.tiktok_order_id == "576471829300123456"
    assert order.created_at == datetime(2026, 10, 28, 21, 14, 7, tzinfo=UTC)
    assert [it.item_id for it in order.top_level_items] == [2101, 2103]
    parent = order.item(2101)
    assert parent is not None
    assert parent.product_type == "configurable"
    assert parent.price == Decimal("19.99")
    assert parent.refundable_qty == Decimal("2")
    assert [c.item_id for c in order.children_of(2101)] == [2102]
    child = order.item(2102)
    assert child is not None
    assert child.parent_item_id == 2101
    tote = order.item(2103)
    assert tote is not None
    assert tote.qty_shipped == Decimal("1")


def test_order_money_is_exact_decimal() -> None:
    """Float amounts become the Decimal they print as, never binary noise."""
    order = order_from_json(load("order_configurable.json"))
    assert order.grand_total == Decimal("61.5")
    assert order.total_paid == Decimal("61.5")
    assert order.shipping_amount == Decimal("5.99")
    assert order.total_refunded == Decimal("0")
    assert order.shipping_refunded == Decimal("0")


def test_order_shipping_tax_is_read_and_counts_in_what_is_left() -> None:
    """shipping_tax_amount/_refunded are read; shipping_left includes the unrefunded tax."""
    raw = load("order_configurable.json")
    assert order_from_json(raw).shipping_tax_amount == Decimal("0")
    raw.update(shipping_tax_amount=1.2, shipping_tax_refunded=0.2, shipping_refunded=1)
    order = order_from_json(raw)
    assert order.shipping_tax_amount == Decimal("1.2")
    assert order.shipping_tax_refunded == Decimal("0.2")
    assert order.shipping_left == Decimal("5.99")  # (5.99 - 1) + (1.2 - 0.2)


def test_order_comments_come_from_status_histories() -> None:
    """Only non-empty status_histories[].comment texts are kept, in order."""
    order = order_from_json(load("order_configurable.json"))
    assert order.comments == ("Imported from TikTok Shop order 576471829300123456",)


def test_php_empty_array_is_accepted_for_objects() -> None:
    """PHP's [] for extension_attributes and payment maps like {}."""
    raw = load("order_configurable.json")
    raw["extension_attributes"] = []
    raw["payment"] = []
    raw["status_histories"] = []
    order = order_from_json(raw)
    assert order.comments == ()
    assert order.tiktok_order_id == "576471829300123456"
    memo_raw = load("creditmemo_partial.json")
    memo_raw["comments"] = {}
    assert credit_memo_from_json(memo_raw).comments == ()


def test_missing_nullable_totals_default_to_zero() -> None:
    """Magento omits null fields (e.g. total_paid); they map to 0."""
    raw = load("order_configurable.json")
    for key in ("total_paid", "total_refunded", "shipping_refunded", "created_at"):
        raw.pop(key, None)
    order = order_from_json(raw)
    assert order.total_paid == Decimal("0")
    assert order.created_at is None


@pytest.mark.parametrize(
    ("field", "value", "where"),
    [
        ("ext_order_id", "576471829300123456", "top"),
        ("tiktok_order_id", "576471829300999999", "top"),
        ("tiktok_order_id", "576471829300888888", "extension_attributes"),
        ("tiktok_order_id", 576471829300777777, "extension_attributes"),
    ],
)
def test_tiktok_id_is_read_from_the_configured_field(
    field: str, value: object, where: str
) -> None:
    """The configured column wins; extension_attributes is the fallback."""
    raw = load("order_configurable.json")
    if field != "ext_order_id":
        raw.pop("ext_order_id")
    if where == "top":
        raw[field] = value
    else:
        raw["extension_attributes"][field] = value
    order = order_from_json(raw, tiktok_order_id_field=field)
    assert order.tiktok_order_id == str(value)


def test_tiktok_id_absent_or_empty_is_none() -> None:
    """No value (or an empty one) anywhere gives None."""
    assert tiktok_order_id({"ext_order_id": ""}) is None
    assert tiktok_order_id({"extension_attributes": []}) is None
    assert tiktok_order_id({"ext_order_id": None, "extension_attributes": {}}) is None
    assert tiktok_order_id([]) is None


def test_credit_memo_maps_items_and_comments() -> None:
    """A memo maps its order id, money, items and comments[].comment."""
    memo = credit_memo_from_json(load("creditmemo_partial.json"))
    assert memo.magento_creditmemo_id == 311
    assert memo.magento_entity_id == 1042
    assert memo.magento_increment_id == "000000311"
    assert memo.store_id == 1
    assert memo.created_at == datetime(2026, 10, 30, 9, 2, 55, tzinfo=UTC)
    assert memo.grand_total == Decimal("19.99")
    assert memo.shipping_amount == Decimal("0")
    assert [(i.order_item_id, i.qty) for i in memo.items] == [
        (2101, Decimal("1")),
        (2102, Decimal("1")),
    ]
    assert memo.comments == (
        "cancelsync: TikTok order 576471829300123456 cancelled (cancel 4035123)",
    )


def test_comments_from_search_result_or_list() -> None:
    """Comment texts are read from a search result object or a bare list."""
    raw = {"items": [{"comment": "a"}, {"comment": ""}, {"comment": "b"}]}
    assert comments_from_json(raw) == ("a", "b")
    assert comments_from_json([{"comment": "c"}]) == ("c",)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r.pop("entity_id"), "'entity_id' is missing"),
        (lambda r: r.update(entity_id="abc"), "'entity_id' is not an integer"),
        (lambda r: r.update(entity_id=True), "'entity_id' is not an integer"),
        (lambda r: r.pop("increment_id"), "order 1042: required field 'increment_id'"),
        (lambda r: r.pop("state"), "'state' is missing"),
        (lambda r: r.pop("items"), "'items' is missing"),
        (lambda r: r.update(items={"a": 1}), "'items' is not a list"),
        (lambda r: r.update(grand_total="12,50"), "'grand_total' is not a number"),
        (lambda r: r.update(grand_total="NaN"), "'grand_total' is not a finite"),
        (lambda r: r.update(created_at="yesterday"), "'created_at' is not a date-time"),
        (lambda r: r["items"][1].pop("item_id"), "items[1]: required field 'item_id'"),
        (lambda r: r["items"][0].pop("qty_ordered"), "'qty_ordered' is missing"),
        (lambda r: r["items"][0].update(sku=["x"]), "'sku' is not a string"),
        (lambda r: r.update(status_histories=["x"]), "status_histories[0]"),
    ],
)
def test_garbled_order_raises_data_error_naming_the_field(
    mutate: Any, message: str
) -> None:
    """Missing or malformed required fields raise DataError naming the field."""
    raw = copy.deepcopy(load("order_configurable.json"))
    mutate(raw)
    with pytest.raises(DataError) as excinfo:
        order_from_json(raw)
    assert message in str(excinfo.value)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r.pop("order_id"), "memo 311: required field 'order_id'"),
        (lambda r: r["items"][0].pop("qty"), "items[0]: required field 'qty'"),
        (lambda r: r.update(items="nope"), "'items' is not a list"),
    ],
)
def test_garbled_credit_memo_raises_data_error(mutate: Any, message: str) -> None:
    """A memo without its order id or with a broken item raises DataError."""
    raw = load("creditmemo_partial.json")
    mutate(raw)
    with pytest.raises(DataError) as excinfo:
        credit_memo_from_json(raw)
    assert message in str(excinfo.value)


def test_non_object_payload_raises_data_error() -> None:
    """A payload that is not an object at all is a DataError, not a TypeError."""
    with pytest.raises(DataError, match="expected an object"):
        order_from_json("<html>")
    with pytest.raises(DataError, match="expected an object"):
        credit_memo_from_json(42)


# ------------------------------------------------------------------ hostile payloads

ARABIC_THREE = "\u0663"  # Decimal() and int() would both read it as 3


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r.update(items=[]), "order 1042: the order has no items"),
        (
            lambda r: r["items"].append(dict(r["items"][2])),
            "item_id 2103 is listed twice",
        ),
        (
            lambda r: r["items"][2].update(qty_refunded=-1),
            "'qty_refunded' is not a qua",
        ),
        (
            lambda r: r["items"][2].update(qty_ordered="1.5"),
            "qty_ordered 1.5; a TikTok",
        ),
        (lambda r: r["items"][1].update(qty_invoiced=0.5), "item 2102"),
        (lambda r: r.update(total_paid=ARABIC_THREE), "'total_paid' is not a number"),
        (lambda r: r.update(store_id=ARABIC_THREE), "'store_id' is not an integer"),
    ],
)
def test_hostile_order_raises_data_error(mutate: Any, message: str) -> None:
    """No items, a row listed twice, a negative or (on a TikTok order) fractional qty,
    and non-ASCII digits are refused: nothing downstream may compute a refund from them."""
    raw = copy.deepcopy(load("order_configurable.json"))
    mutate(raw)
    with pytest.raises(DataError) as excinfo:
        order_from_json(raw)
    assert message in str(excinfo.value)


def test_fractional_qty_is_kept_on_an_order_that_is_not_tiktoks() -> None:
    """An order sold by weight in another channel keeps its decimals (no TikTok id)."""
    raw = copy.deepcopy(load("order_configurable.json"))
    raw["ext_order_id"] = None
    raw["items"][2].update(qty_ordered="1.5", qty_invoiced="1.5")
    order = order_from_json(raw)
    assert order.tiktok_order_id is None
    tote = order.item(2103)
    assert tote is not None
    assert tote.qty_ordered == Decimal("1.5")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda r: r["items"].append(dict(r["items"][0])),
            "order_item_id 2101 is listed",
        ),
        (lambda r: r["items"][0].update(qty=-1), "'qty' is not a quantity"),
        (lambda r: r.update(entity_id=ARABIC_THREE), "'entity_id' is not an integer"),
    ],
)
def test_hostile_credit_memo_raises_data_error(mutate: Any, message: str) -> None:
    """A memo naming one order row twice, a negative qty or a non-ASCII id is refused."""
    raw = load("creditmemo_partial.json")
    mutate(raw)
    with pytest.raises(DataError) as excinfo:
        credit_memo_from_json(raw)
    assert message in str(excinfo.value)


def test_skus_are_nfc_normalised() -> None:
    """A SKU stored decomposed (NFD) reads as its composed (NFC) form, on orders and memos."""
    raw = copy.deepcopy(load("order_configurable.json"))
    raw["items"][2]["sku"] = "CAFE\u0301"
    memo = load("creditmemo_partial.json")
    memo["items"][0]["sku"] = "CAFE\u0301"
    tote = order_from_json(raw).item(2103)
    assert tote is not None
    assert tote.sku == "CAF\u00c9"
    assert credit_memo_from_json(memo).items[0].sku == "CAF\u00c9"
