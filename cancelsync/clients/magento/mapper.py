"""Raw Magento REST JSON → domain models (``MagentoOrder``, ``MagentoCreditMemo``).

The edge where Magento's loose JSON becomes typed data:

- money and quantities become ``Decimal`` (floats go through ``str`` so ``12.3`` stays
  ``12.3``); Magento leaves out null fields, so optional amounts default to 0;
- ``created_at`` is Magento's zone-less UTC ``YYYY-MM-DD HH:MM:SS`` → an aware UTC
  datetime;
- PHP serializes an empty object as ``[]``, so ``[]`` is accepted wherever ``{}`` is
  expected (``extension_attributes``, ``payment``, ...);
- the TikTok order id is read from the configured column (default ``ext_order_id``) and,
  when that is not a top-level field, from ``extension_attributes``;
- order comments come from ``status_histories[].comment``, memo comments from
  ``comments[].comment``.

A missing or garbled required field raises ``DataError`` naming the record and field.

Hostile payloads (issue 14) are refused rather than guessed at, so that nothing downstream
computes a refund from them: numbers must be ASCII (``Decimal("٣")`` would read 3); a
quantity may not be negative; an order must have items, each ``item_id`` once (a row
listed twice would be refunded twice), and a memo must name each order row once. A TikTok
order (one with a TikTok id) sells whole units, so a fractional quantity on any of its rows
is refused too: rounding it would refund an amount nobody asked for. (Other orders may
sell by weight; they keep their decimals.) SKUs are NFC-normalised, so the same text in
two Unicode forms matches across platforms.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from cancelsync.errors import DataError
from cancelsync.models import (
    MagentoCreditMemo,
    MagentoCreditMemoItem,
    MagentoItem,
    MagentoOrder,
)

_MISSING = object()
# The quantity fields of an order row; on a TikTok order each must be a whole number.
_QTY_FIELDS = (
    "qty_ordered",
    "qty_invoiced",
    "qty_refunded",
    "qty_shipped",
    "qty_canceled",
)


def order_from_json(
    raw: Any, *, tiktok_order_id_field: str = "ext_order_id"
) -> MagentoOrder:
    """Map one order (``GET /V1/orders/{id}`` or a search item) to ``MagentoOrder``."""
    r = _Record(raw, "magento order")
    entity_id = r.integer("entity_id")
    r.where = f"magento order {entity_id}"
    items_raw = r.array("items", required=True)
    if not items_raw:
        raise DataError(f"{r.where}: the order has no items")
    items = tuple(
        item_from_json(it, where=f"{r.where}.items[{i}]")
        for i, it in enumerate(items_raw)
    )
    _unique([it.item_id for it in items], "item_id", f"{r.where}.items")
    tiktok_id = tiktok_order_id(raw, tiktok_order_id_field)
    if tiktok_id is not None:
        _whole_units(items, r.where)
    return MagentoOrder(
        magento_entity_id=entity_id,
        magento_increment_id=r.text("increment_id"),
        state=r.text("state"),
        status=r.text("status", default=""),
        store_id=r.opt_int("store_id"),
        tiktok_order_id=tiktok_id,
        items=items,
        grand_total=r.dec("grand_total"),
        total_paid=r.dec("total_paid"),
        total_invoiced=r.dec("total_invoiced"),
        total_refunded=r.dec("total_refunded"),
        shipping_amount=r.dec("shipping_amount"),
        shipping_refunded=r.dec("shipping_refunded"),
        comments=_comments(r, "status_histories"),
        created_at=r.opt_datetime("created_at"),
        shipping_tax_amount=r.dec("shipping_tax_amount"),
        shipping_tax_refunded=r.dec("shipping_tax_refunded"),
    )


def item_from_json(raw: Any, *, where: str = "magento order item") -> MagentoItem:
    """Map one order item row (a configurable parent and its child are two rows)."""
    r = _Record(raw, where)
    return MagentoItem(
        item_id=r.integer("item_id"),
        sku=r.sku("sku"),
        product_type=r.text("product_type", default=""),
        qty_ordered=r.qty("qty_ordered", required=True),
        qty_invoiced=r.qty("qty_invoiced"),
        qty_refunded=r.qty("qty_refunded"),
        qty_shipped=r.qty("qty_shipped"),
        qty_canceled=r.qty("qty_canceled"),
        parent_item_id=r.opt_int("parent_item_id"),
        price=r.dec("price"),
        row_total=r.dec("row_total") if "row_total" in r.raw else None,
        tax_amount=r.dec("tax_amount"),
        discount_amount=r.dec("discount_amount"),
    )


def credit_memo_from_json(raw: Any) -> MagentoCreditMemo:
    """Map one credit memo (``GET /V1/creditmemo/{id}`` or a search item)."""
    r = _Record(raw, "magento credit memo")
    memo_id = r.integer("entity_id")
    r.where = f"magento credit memo {memo_id}"
    items = tuple(
        credit_memo_item_from_json(it, where=f"{r.where}.items[{i}]")
        for i, it in enumerate(r.array("items"))
    )
    _unique([it.order_item_id for it in items], "order_item_id", f"{r.where}.items")
    return MagentoCreditMemo(
        magento_creditmemo_id=memo_id,
        magento_entity_id=r.integer("order_id"),
        created_at=r.opt_datetime("created_at"),
        store_id=r.opt_int("store_id"),
        magento_increment_id=r.text("increment_id", default=""),
        grand_total=r.dec("grand_total"),
        shipping_amount=r.dec("shipping_amount"),
        items=items,
        comments=_comments(r, "comments"),
    )


def credit_memo_item_from_json(
    raw: Any, *, where: str = "magento credit memo item"
) -> MagentoCreditMemoItem:
    """Map one credit memo item (``order_item_id`` points at the order's item row)."""
    r = _Record(raw, where)
    return MagentoCreditMemoItem(
        order_item_id=r.integer("order_item_id"),
        sku=r.sku("sku", default=""),
        qty=r.qty("qty", required=True),
    )


def comments_from_json(raw: Any, *, where: str = "magento comments") -> tuple[str, ...]:
    """Comment texts from a ``{items: [{comment: ...}]}`` result or a bare list."""
    if isinstance(raw, Mapping):
        return _comments(_Record(raw, where), "items")
    return _comments(_Record({"items": raw}, where), "items")


def tiktok_order_id(raw: Any, field: str = "ext_order_id") -> str | None:
    """The TikTok order id stored on a raw order: the top-level ``field``, else the same
    key inside ``extension_attributes``; ``None`` when absent or empty."""
    if not isinstance(raw, Mapping):
        return None
    value = raw.get(field)
    if value in (None, "", []):
        ext = raw.get("extension_attributes")
        value = ext.get(field) if isinstance(ext, Mapping) else None
    if value is None or isinstance(value, bool | list | dict):
        return None
    text = str(value).strip()
    return text or None


def parse_magento_datetime(value: str) -> datetime:
    """Magento's zone-less UTC ``YYYY-MM-DD HH:MM:SS`` (or ISO) → aware UTC."""
    parsed = datetime.fromisoformat(value.strip().replace(" ", "T", 1))
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _unique(ids: list[int], what: str, where: str) -> None:
    """Refuse a list naming one row twice (it would be counted, or refunded, twice)."""
    seen: set[int] = set()
    for value in ids:
        if value in seen:
            raise DataError(f"{where}: {what} {value} is listed twice")
        seen.add(value)


def _whole_units(items: tuple[MagentoItem, ...], where: str) -> None:
    """A TikTok order's rows hold whole units; a fraction cannot be mirrored."""
    for it in items:
        for name in _QTY_FIELDS:
            value: Decimal = getattr(it, name)
            if value != value.to_integral_value():
                raise DataError(
                    f"{where}: item {it.item_id} ({it.sku}) has {name} {value}; a TikTok "
                    "order sells whole units, so cancelsync will not round it"
                )


def _comments(r: _Record, key: str) -> tuple[str, ...]:
    out: list[str] = []
    for i, entry in enumerate(r.array(key)):
        if not isinstance(entry, Mapping):
            raise DataError(f"{r.where}: {key}[{i}] is not an object: {_short(entry)}")
        text = entry.get("comment")
        if isinstance(text, str) and text:
            out.append(text)
    return tuple(out)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class _Record:
    """Typed, error-naming access to one JSON object."""

    def __init__(self, raw: Any, where: str) -> None:
        if isinstance(raw, list) and not raw:
            raw = {}  # PHP's empty object
        if not isinstance(raw, Mapping):
            raise DataError(f"{where}: expected an object, got {_short(raw)}")
        self.raw = raw
        self.where = where

    def _get(self, key: str, required: bool) -> Any:
        value = self.raw.get(key, _MISSING)
        if value is _MISSING or value is None:
            if required:
                raise DataError(f"{self.where}: required field {key!r} is missing")
            return _MISSING
        return value

    def _bad(self, key: str, value: Any, kind: str) -> DataError:
        return DataError(f"{self.where}: field {key!r} is not {kind}: {_short(value)}")

    def integer(self, key: str) -> int:
        value = self._get(key, True)
        return self._as_int(key, value)

    def opt_int(self, key: str) -> int | None:
        value = self._get(key, False)
        return None if value is _MISSING else self._as_int(key, value)

    def _as_int(self, key: str, value: Any) -> int:
        if isinstance(value, bool):
            raise self._bad(key, value, "an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, str):
            digits = value.strip().removeprefix("-")
            if digits.isascii() and digits.isdigit():
                return int(value.strip())
        raise self._bad(key, value, "an integer")

    def text(self, key: str, default: str | None = None) -> str:
        value = self._get(key, default is None)
        if value is _MISSING:
            return default or ""
        if isinstance(value, str):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return f"{value}"
        raise self._bad(key, value, "a string")

    def dec(self, key: str, *, required: bool = False) -> Decimal:
        value = self._get(key, required)
        if value is _MISSING:
            return Decimal("0")
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise self._bad(key, value, "a number")
        text = f"{value}".strip()
        try:
            result = Decimal(text) if text.isascii() else None
        except InvalidOperation:
            result = None
        if result is None:
            raise self._bad(key, value, "a number")
        if not result.is_finite():
            raise self._bad(key, value, "a finite number")
        return result

    def qty(self, key: str, *, required: bool = False) -> Decimal:
        """A quantity: a number that is not negative."""
        value = self.dec(key, required=required)
        if value < 0:
            raise self._bad(key, self.raw.get(key), "a quantity (it is negative)")
        return value

    def sku(self, key: str, default: str | None = None) -> str:
        """A SKU, NFC-normalised (one SKU may arrive composed or decomposed)."""
        return unicodedata.normalize("NFC", self.text(key, default))

    def opt_datetime(self, key: str) -> datetime | None:
        value = self._get(key, False)
        if value is _MISSING or value == "":
            return None
        if not isinstance(value, str):
            raise self._bad(key, value, "a date-time string")
        try:
            return parse_magento_datetime(value)
        except ValueError:
            raise self._bad(key, value, "a date-time (YYYY-MM-DD HH:MM:SS)") from None

    def array(self, key: str, *, required: bool = False) -> list[Any]:
        value = self._get(key, required)
        if value is _MISSING:
            return []
        if isinstance(value, Mapping) and not value:
            return []  # an empty PHP array may arrive as {} from some serializers
        if not isinstance(value, list):
            raise self._bad(key, value, "a list")
        return value
