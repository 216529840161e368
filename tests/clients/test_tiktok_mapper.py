"""TikTok JSON → domain types, on sanitized recorded replies."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from cancelsync.clients.tiktok import mapper
from cancelsync.errors import DataError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "tiktok"


def _data(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))["data"]


def test_shops_map_id_region_and_cipher() -> None:
    """Authorized shops keep the id, region and the cipher sent as shop_cipher."""
    shops = mapper.shops_from_json(_data("authorized_shops.json"))
    assert [s.tiktok_shop_id for s in shops] == [
        "7495540735365777507",
        "7495540735365777999",
    ]
    assert shops[0].cipher == "ROW_SANITIZEDcipherUS000000000"
    assert shops[1].region == "GB"
    assert shops[1].seller_type == "CROSS_BORDER"


def test_token_grant_expiries_are_absolute_timestamps() -> None:
    """``*_expire_in`` are kept as absolute Unix seconds, not added to now."""
    grant = mapper.token_grant_from_json(_data("token_refresh.json"))
    assert grant.access_token == "ROW_sanitized_access_token"
    assert grant.refresh_token == "ROW_sanitized_refresh_token"
    assert grant.access_token_expire_at == 1793188800
    assert grant.refresh_token_expire_at == 4948099200
    assert grant.seller_base_region == "US"


def test_order_maps_status_money_and_lines() -> None:
    """An order keeps its status, aware UTC times, Decimal money and unit lines."""
    order = mapper.orders_from_json(_data("order_detail.json"))[0]
    assert order.tiktok_order_id == "576461413038785752"
    assert order.status == "AWAITING_SHIPMENT"
    assert order.update_time == datetime.fromtimestamp(1793538000, UTC)
    assert order.update_time.tzinfo is UTC
    assert order.currency == "USD"
    assert order.total_amount == Decimal("70.37")
    assert order.shipping_fee == Decimal("4.99")
    assert order.cancel_time is None
    assert order.cancellation_initiator == "SELLER"
    assert [ln.line_id for ln in order.lines] == [
        "576461413038785801",
        "576461413038785802",
    ]
    assert order.lines[0].sale_price == Decimal("29.99")
    assert order.lines[0].seller_sku == "TSHIRT-RED-M"


def test_partially_cancelled_order_marks_cancelled_lines_by_display_status() -> None:
    """A live order with a CANCELLED line reports that line as cancelled."""
    order = mapper.orders_from_json(_data("order_detail.json"))[0]
    assert [ln.cancelled for ln in order.lines] == [False, True]
    assert order.lines[1].cancel_user == "SELLER"


def test_cancelled_order_maps_cancel_time_and_buyer_request() -> None:
    """A buyer-cancelled order keeps cancel_time, initiator and the request flag."""
    order = mapper.orders_from_json(_data("order_detail.json"))[1]
    assert order.status == "CANCELLED"
    assert order.cancel_time == datetime.fromtimestamp(1793541600, UTC)
    assert order.cancellation_initiator == "BUYER"
    assert order.is_buyer_request_cancel is True
    assert order.shipping_fee == Decimal("0")
    assert all(line.cancelled for line in order.lines)


def test_cancellation_maps_refund_and_lines() -> None:
    """A completed cancellation keeps its refund total, currency and line refunds."""
    done = mapper.cancellations_from_json(_data("search_cancellations.json"))[0]
    assert done.cancel_id == "4035318250919120001"
    assert done.tiktok_order_id == "576461413038785753"
    assert done.cancel_type == "BUYER_CANCEL"
    assert done.role == "BUYER"
    assert done.accepted
    assert done.refund_total == Decimal("12.50")
    assert done.currency == "EUR"
    assert done.cancel_reason == "ecom_order_delivered_canceled_reason_change_mind"
    assert len(done.lines) == 1
    assert done.lines[0].order_line_item_id == "576461413038785901"
    assert done.lines[0].refund_amount == Decimal("12.50")
    assert done.seller_action_deadline is None


def test_pending_cancellation_maps_deadline_and_bare_line_refund() -> None:
    """A pending buyer request has its seller deadline; a bare line amount is read."""
    pending = mapper.cancellations_from_json(_data("search_cancellations.json"))[1]
    assert pending.pending
    assert pending.seller_action_deadline == datetime.fromtimestamp(1793631600, UTC)
    assert pending.lines[0].refund_amount == Decimal("34.98")
    assert pending.refund_total == Decimal("34.98")


def test_eligible_reasons_are_those_every_eligible_line_accepts() -> None:
    """Only reasons common to all eligible CANCEL lines come back, in TikTok's order."""
    names = mapper.eligible_reasons_from_json(_data("aftersale_eligibility.json"))
    assert names == [
        "seller_cancel_reason_out_of_stock",
        "seller_cancel_paid_reason_address_not_deliver",
    ]


def test_next_page_token_is_none_when_empty_or_absent() -> None:
    """An empty or missing next_page_token ends the paging."""
    assert mapper.next_page_token({"next_page_token": ""}) is None
    assert mapper.next_page_token({}) is None
    assert mapper.next_page_token({"next_page_token": "a+/b=="}) == "a+/b=="


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda o: o.pop("update_time"), "orders[0].update_time"),
        (lambda o: o.update(status=None), "orders[0].status"),
        (lambda o: o.update(update_time="soon"), "orders[0].update_time"),
        (
            lambda o: o["payment"].update(total_amount="12,50"),
            "orders[0].payment.total_amount",
        ),
        (lambda o: o["line_items"][1].pop("id"), "orders[0].line_items[1].id"),
        (lambda o: o.update(line_items={"id": "x"}), "orders[0].line_items"),
    ],
)
def test_unreadable_order_raises_data_error_naming_the_field(
    mutate: Any, field: str
) -> None:
    """A missing or malformed field raises DataError with its path."""
    data = _data("order_detail.json")
    mutate(data["orders"][0])
    with pytest.raises(DataError, match=field.replace("[", r"\[").replace("]", r"\]")):
        mapper.orders_from_json(data)


def test_unreadable_cancellation_and_token_raise_data_error() -> None:
    """A cancellation without cancel_id or a grant without expiry is a DataError."""
    data = _data("search_cancellations.json")
    del data["cancellations"][1]["cancel_id"]
    with pytest.raises(DataError, match=r"cancellations\[1\]\.cancel_id"):
        mapper.cancellations_from_json(data)
    grant = _data("token_refresh.json")
    del grant["access_token_expire_in"]
    with pytest.raises(DataError, match="access_token_expire_in"):
        mapper.token_grant_from_json(grant)


def test_data_that_is_not_an_object_raises_data_error() -> None:
    """A list where the envelope's data object belongs is a DataError."""
    with pytest.raises(DataError, match="data is not an object"):
        mapper.orders_from_json([])


# ------------------------------------------------------------------ hostile payloads


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda o: o.update(
                update_time="\u0661\u0667\u0669\u0663\u0665\u0663\u0668\u0660\u0660\u0660"
            ),
            "update_time is not a number",
        ),
        (lambda o: o.update(update_time=1793538000.5), "update_time is not a number"),
        (
            lambda o: o["payment"].update(total_amount="\u0667\u0660"),
            "total_amount is not an",
        ),
        (
            lambda o: o["payment"].update(shipping_fee="-4.99"),
            "shipping_fee is negative",
        ),
        (lambda o: o["line_items"].append(dict(o["line_items"][0])), "line id"),
    ],
)
def test_hostile_order_raises_data_error(mutate: Any, message: str) -> None:
    """Unicode digits, fractional seconds, negative money and a line listed twice are
    refused, never read as a guess."""
    data = _data("order_detail.json")
    mutate(data["orders"][0])
    with pytest.raises(DataError, match=message):
        mapper.orders_from_json(data)


def test_empty_list_for_an_object_reads_as_empty() -> None:
    """``payment: []`` and ``refund_amount: []`` are the empty objects they stand for."""
    data = _data("order_detail.json")
    data["orders"][0]["payment"] = []
    order = mapper.orders_from_json(data)[0]
    assert (order.currency, order.total_amount) == ("", None)
    cancels = _data("search_cancellations.json")
    cancels["cancellations"][0]["refund_amount"] = []
    assert mapper.cancellations_from_json(cancels)[0].refund_total is None


def test_cancellation_listing_one_order_line_twice_is_refused() -> None:
    """Two entries for one order line would refund two units for one cancelled."""
    data = _data("search_cancellations.json")
    lines = data["cancellations"][0]["cancel_line_items"]
    lines.append({**lines[0], "cancel_line_item_id": "other"})
    page = mapper.cancellations_page_from_json(data)
    assert [c.cancel_id for c in page] == ["4035318250919120002"]
    [bad] = page.unreadable
    assert bad.item_id == "4035318250919120001"
    assert "lists order line 576461413038785901 twice" in bad.error


def test_unreadable_items_keep_their_id_and_update_time() -> None:
    """An unreadable record or order keeps what can still be read of it: its id and
    update_time (where a cursor must hold), or None for each that cannot."""
    data = _data("search_cancellations.json")
    del data["cancellations"][0]["cancel_id"]
    data["cancellations"][1]["cancel_status"] = None
    data["cancellations"][1]["update_time"] = "soon"
    page = mapper.cancellations_page_from_json(data)
    assert list(page) == []
    first, second = page.unreadable
    assert (first.item_id, first.position) == (None, 1793541600)
    assert (second.item_id, second.position) == ("4035318250919120002", None)
    orders = _data("order_detail.json")
    del orders["orders"][1]["status"]
    search = mapper.orders_page_from_json(orders)
    assert [o.tiktok_order_id for o in search] == ["576461413038785752"]
    [bad] = search.unreadable
    assert (bad.item_id, bad.position) == ("576461413038785753", 1793541600)


def test_seller_skus_are_nfc_normalised() -> None:
    """A SKU sent decomposed (NFD) reads as its composed (NFC) form."""
    data = _data("order_detail.json")
    data["orders"][0]["line_items"][0]["seller_sku"] = "CAFE\u0301-☃"
    cancels = _data("search_cancellations.json")
    cancels["cancellations"][0]["cancel_line_items"][0]["seller_sku"] = "CAFE\u0301"
    assert mapper.orders_from_json(data)[0].lines[0].seller_sku == "CAF\u00c9-☃"
    lines = mapper.cancellations_from_json(cancels)[0].lines
    assert lines[0].seller_sku == "CAF\u00c9"
