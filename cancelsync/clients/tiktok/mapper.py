"""TikTok Shop JSON → domain types (``cancelsync.models``), at the client edge.

Money becomes ``Decimal`` (TikTok sends decimal strings), Unix seconds become aware
UTC datetimes, and token ``*_expire_in`` values are kept as the *absolute* timestamps
they are (reference §3). A payload that lacks a field we need raises ``DataError``
naming the field, e.g. ``orders[2].update_time``.

Hostile payloads (issue 14) are refused here rather than guessed at: numbers must be ASCII
digits (``int("٣")`` would read 3), amounts must not be negative, an order may not list
one line id twice and a cancellation may not list one order line twice (each would count
a unit twice: a refund of two units for one cancelled). An empty list where an object is
expected (``payment: []``, ``refund_amount: []``) is read as the empty object it stands
for. Seller SKUs are NFC-normalised, so the same text typed in two Unicode forms still
matches across platforms. List pages keep their unreadable items in ``Page.unreadable``,
with the item's id and ``update_time`` when readable, so the sync can report them and
hold its cursor before one it cannot record.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from cancelsync.clock import from_epoch
from cancelsync.errors import DataError
from cancelsync.models import (
    Page,
    TikTokCancellation,
    TikTokCancelLine,
    TikTokLine,
    TikTokOrder,
    TikTokShop,
    TokenGrant,
    Unreadable,
)

_T = TypeVar("_T")


def _obj(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise DataError(
            f"tiktok: {where} is not an object (got {type(value).__name__})"
        )
    return value


def _list(data: Mapping[str, Any], key: str, where: str) -> list[Any]:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise DataError(f"tiktok: {where}.{key} is not a list")
    return value


def _str(
    data: Mapping[str, Any], key: str, where: str, *, required: bool = True
) -> str:
    value = data.get(key)
    if value is None or value == "":
        if required:
            raise DataError(f"tiktok: {where}.{key} is missing")
        return ""
    # Ids are strings on the wire, but a numeric id must not break the sync.
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise DataError(f"tiktok: {where}.{key} is not a string: {value!r}")
    return str(value)


def _int(data: Mapping[str, Any], key: str, where: str) -> int | None:
    value = data.get(key)
    if value is None or value == "":
        return None
    number = _as_int(value)
    if number is None:
        raise DataError(f"tiktok: {where}.{key} is not a number: {value!r}")
    return number


def _as_int(value: Any) -> int | None:
    """A whole number from an int, a whole float or a string of ASCII digits."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str):
        text = value.strip()
        digits = text[1:] if text.startswith("-") else text
        if digits.isascii() and digits.isdigit():
            return int(text)
    return None


def _time(data: Mapping[str, Any], key: str, where: str) -> datetime | None:
    seconds = _int(data, key, where)
    # TikTok uses 0 for "not yet" on some timestamps and deadlines.
    if seconds is None or seconds <= 0:
        return None
    return from_epoch(seconds)


def _required_time(data: Mapping[str, Any], key: str, where: str) -> datetime:
    value = _time(data, key, where)
    if value is None:
        raise DataError(f"tiktok: {where}.{key} is missing")
    return value


def _amount(value: Any, where: str) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise DataError(f"tiktok: {where} is not an amount: {value!r}")
    # str() first: a stray float becomes its shortest repr, not binary noise.
    text = str(value).strip()
    try:
        amount = Decimal(text) if text.isascii() else None
    except InvalidOperation:
        amount = None
    if amount is None or not amount.is_finite():
        raise DataError(f"tiktok: {where} is not an amount: {value!r}")
    if amount < 0:
        raise DataError(f"tiktok: {where} is negative: {value!r}")
    return amount


def _money(data: Mapping[str, Any], key: str, where: str) -> Decimal | None:
    return _amount(data.get(key), f"{where}.{key}")


def _sku(data: Mapping[str, Any], key: str, where: str) -> str:
    """A SKU as text, NFC-normalised (the same SKU may arrive composed or decomposed)."""
    return unicodedata.normalize("NFC", _str(data, key, where, required=False))


def _unique(ids: list[str], what: str, where: str) -> None:
    """Refuse a list naming one id twice: each entry counts as one unit."""
    seen: set[str] = set()
    for value in ids:
        if value in seen:
            raise DataError(f"tiktok: {where} lists {what} {value} twice")
        seen.add(value)


def _bool(data: Mapping[str, Any], key: str) -> bool:
    value = data.get(key)
    if isinstance(value, str):
        return value.lower() == "true"
    return bool(value)


# --------------------------------------------------------------------------- shops


def shop_from_json(raw: Any, where: str = "shop") -> TikTokShop:
    """One ``data.shops[]`` entry of Get Authorized Shops."""
    data = _obj(raw, where)
    return TikTokShop(
        tiktok_shop_id=_str(data, "id", where),
        name=_str(data, "name", where, required=False),
        region=_str(data, "region", where, required=False),
        cipher=_str(data, "cipher", where),
        seller_type=_str(data, "seller_type", where, required=False),
        code=_str(data, "code", where, required=False),
    )


def shops_from_json(data: Any) -> list[TikTokShop]:
    """``data`` of Get Authorized Shops → shops."""
    body = _obj(data, "data")
    return [
        shop_from_json(item, f"shops[{i}]")
        for i, item in enumerate(_list(body, "shops", "data"))
    ]


# --------------------------------------------------------------------------- tokens


def token_grant_from_json(data: Any) -> TokenGrant:
    """``data`` of token get/refresh; ``*_expire_in`` are absolute Unix seconds."""
    body = _obj(data, "data")
    access_expire = _int(body, "access_token_expire_in", "data")
    refresh_expire = _int(body, "refresh_token_expire_in", "data")
    if access_expire is None:
        raise DataError("tiktok: data.access_token_expire_in is missing")
    if refresh_expire is None:
        raise DataError("tiktok: data.refresh_token_expire_in is missing")
    return TokenGrant(
        access_token=_str(body, "access_token", "data"),
        access_token_expire_at=access_expire,
        refresh_token=_str(body, "refresh_token", "data"),
        refresh_token_expire_at=refresh_expire,
        open_id=_str(body, "open_id", "data", required=False),
        seller_name=_str(body, "seller_name", "data", required=False),
        seller_base_region=_str(body, "seller_base_region", "data", required=False),
    )


# --------------------------------------------------------------------------- orders


def line_from_json(raw: Any, where: str) -> TikTokLine:
    """One ``line_items[]`` entry (one unit; no quantity field)."""
    data = _obj(raw, where)
    return TikTokLine(
        line_id=_str(data, "id", where),
        sku_id=_str(data, "sku_id", where, required=False),
        seller_sku=_sku(data, "seller_sku", where),
        display_status=_str(data, "display_status", where),
        sale_price=_money(data, "sale_price", where) or Decimal("0"),
        cancel_user=_str(data, "cancel_user", where, required=False),
        product_name=_str(data, "product_name", where, required=False),
    )


def order_from_json(raw: Any, where: str = "order") -> TikTokOrder:
    """One order of Get Order Detail or Search Orders."""
    data = _obj(raw, where)
    payment_raw = data.get("payment")
    # An empty object serialized as an empty list carries no amounts either.
    payment = (
        _obj(payment_raw, f"{where}.payment") if payment_raw not in (None, []) else {}
    )
    lines = tuple(
        line_from_json(item, f"{where}.line_items[{i}]")
        for i, item in enumerate(_list(data, "line_items", where))
    )
    _unique([line.line_id for line in lines], "line id", f"{where}.line_items")
    return TikTokOrder(
        tiktok_order_id=_str(data, "id", where),
        status=_str(data, "status", where),
        update_time=_required_time(data, "update_time", where),
        lines=lines,
        cancel_time=_time(data, "cancel_time", where),
        cancellation_initiator=_str(
            data, "cancellation_initiator", where, required=False
        ),
        is_buyer_request_cancel=(
            _bool(data, "is_buyer_request_cancel")
            if data.get("is_buyer_request_cancel") is not None
            else None
        ),
        currency=_str(payment, "currency", f"{where}.payment", required=False),
        total_amount=_money(payment, "total_amount", f"{where}.payment"),
        shipping_fee=_money(payment, "shipping_fee", f"{where}.payment"),
    )


def orders_from_json(data: Any) -> list[TikTokOrder]:
    """``data`` of Search Orders or Get Order Detail → orders; any unreadable one raises
    (a detail read must never make an order look absent)."""
    page = orders_page_from_json(data)
    if page.unreadable:
        raise DataError(page.unreadable[0].error)
    return list(page)


def orders_page_from_json(data: Any) -> Page[TikTokOrder]:
    """Like ``orders_from_json``, but one unreadable order does not sink a search page:
    it is returned in ``Page.unreadable`` (with its id and ``update_time`` if readable)."""
    return _page(data, "orders", order_from_json, "id")


def _page(data: Any, key: str, read: Callable[[Any, str], _T], id_key: str) -> Page[_T]:
    """The items of ``data[key]``, each unreadable one kept in ``Page.unreadable``."""
    body = _obj(data, "data")
    good: list[_T] = []
    bad: list[Unreadable] = []
    for i, item in enumerate(_list(body, key, "data")):
        try:
            good.append(read(item, f"{key}[{i}]"))
        except DataError as exc:
            bad.append(_unreadable(item, id_key, str(exc)))
    return Page(good, bad)


def _unreadable(item: Any, id_key: str, error: str) -> Unreadable:
    """What can still be read of a bad item: its id and its ``update_time``."""
    if not isinstance(item, Mapping):
        return Unreadable(None, error)
    raw_id = item.get(id_key)
    item_id = str(raw_id) if isinstance(raw_id, str | int) and raw_id != "" else None
    if isinstance(raw_id, bool):
        item_id = None
    seconds = _as_int(item.get("update_time"))
    return Unreadable(item_id, error, seconds if seconds and seconds > 0 else None)


# ------------------------------------------------------------------------ cancellations


def _refund(raw: Any, where: str) -> tuple[Decimal | None, str]:
    """``refund_amount``: an object ``{currency, refund_total, ...}`` or an amount."""
    if isinstance(raw, Mapping):
        total = _money(raw, "refund_total", where)
        return total, _str(raw, "currency", where, required=False)
    if raw == []:
        return None, ""  # an empty object serialized as an empty list
    return _amount(raw, where), ""


def cancel_line_from_json(raw: Any, where: str) -> TikTokCancelLine:
    """One ``cancel_line_items[]`` entry."""
    data = _obj(raw, where)
    refund, _ = _refund(data.get("refund_amount"), f"{where}.refund_amount")
    return TikTokCancelLine(
        cancel_line_item_id=_str(data, "cancel_line_item_id", where, required=False),
        order_line_item_id=_str(data, "order_line_item_id", where),
        sku_id=_str(data, "sku_id", where, required=False),
        seller_sku=_sku(data, "seller_sku", where),
        refund_amount=refund,
    )


def _seller_deadline(data: Mapping[str, Any], where: str) -> datetime | None:
    """The deadline of the seller's next action (its name differs by version)."""
    for i, item in enumerate(_list(data, "seller_next_action_response", where)):
        entry = _obj(item, f"{where}.seller_next_action_response[{i}]")
        deadline = _time(entry, "deadline", f"{where}.seller_next_action_response[{i}]")
        if deadline is not None:
            return deadline
    return None


def cancellation_from_json(raw: Any, where: str = "cancellation") -> TikTokCancellation:
    """One ``cancellations[]`` entry of Search Cancellations."""
    data = _obj(raw, where)
    refund_total, currency = _refund(
        data.get("refund_amount"), f"{where}.refund_amount"
    )
    lines = tuple(
        cancel_line_from_json(item, f"{where}.cancel_line_items[{i}]")
        for i, item in enumerate(_list(data, "cancel_line_items", where))
    )
    _unique([line.order_line_item_id for line in lines], "order line",
            f"{where}.cancel_line_items")  # fmt: skip
    return TikTokCancellation(
        cancel_id=_str(data, "cancel_id", where),
        tiktok_order_id=_str(data, "order_id", where),
        cancel_type=_str(data, "cancel_type", where, required=False),
        cancel_status=_str(data, "cancel_status", where),
        role=_str(data, "role", where, required=False),
        create_time=_required_time(data, "create_time", where),
        update_time=_required_time(data, "update_time", where),
        cancel_reason=_str(data, "cancel_reason", where, required=False),
        lines=lines,
        refund_total=refund_total,
        currency=currency,
        seller_action_deadline=_seller_deadline(data, where),
    )


def cancellations_from_json(data: Any) -> list[TikTokCancellation]:
    """``data`` of Search Cancellations → cancellations; any unreadable entry raises."""
    page = cancellations_page_from_json(data)
    if page.unreadable:
        raise DataError(page.unreadable[0].error)
    return list(page)


def cancellations_page_from_json(data: Any) -> Page[TikTokCancellation]:
    """Like ``cancellations_from_json``, but one unreadable entry does not sink the page:
    it is returned in ``Page.unreadable`` (with its ``cancel_id`` and ``update_time`` when
    readable)."""
    return _page(data, "cancellations", cancellation_from_json, "cancel_id")


def cancel_result_from_json(data: Any) -> tuple[str, str]:
    """``data`` of Cancel Order → ``(cancel_id, cancel_status)``."""
    body = _obj(data, "data")
    return _str(body, "cancel_id", "data"), _str(
        body, "cancel_status", "data", required=False
    )


def eligible_reasons_from_json(data: Any) -> list[str]:
    """``data`` of Aftersale Eligibility → the cancel reason names every line accepts.

    Only lines marked ``eligible`` count. A reason offered for some lines but not
    others would make a whole-order cancel fail, so only reasons common to all eligible
    lines are returned, in TikTok's order.
    """
    body = _obj(data, "data")
    per_line: list[list[str]] = []
    for i, sku in enumerate(_list(body, "sku_eligibility", "data")):
        sku_where = f"data.sku_eligibility[{i}]"
        sku_data = _obj(sku, sku_where)
        for j, line in enumerate(_list(sku_data, "line_item_eligibility", sku_where)):
            line_where = f"{sku_where}.line_item_eligibility[{j}]"
            line_data = _obj(line, line_where)
            request_type = line_data.get("request_type")
            if request_type not in (None, "", "CANCEL"):
                continue
            if not _bool(line_data, "eligible"):
                continue
            names = _list(line_data, "available_reason_names", line_where)
            per_line.append([str(name) for name in names])
    if not per_line:
        top = _list(body, "available_reason_names", "data")
        return list(dict.fromkeys(str(name) for name in top))
    common = set(per_line[0]).intersection(*per_line[1:])
    return [name for name in dict.fromkeys(per_line[0]) if name in common]


def next_page_token(data: Any) -> str | None:
    """``data.next_page_token``; ``None`` on the last page (empty or absent)."""
    body = _obj(data, "data")
    token = body.get("next_page_token")
    if token in (None, ""):
        return None
    if not isinstance(token, str):
        raise DataError(f"tiktok: data.next_page_token is not a string: {token!r}")
    return token
