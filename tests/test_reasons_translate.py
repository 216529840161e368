"""Reason keys by market and status, and translating a configured reason to a valid key."""

from __future__ import annotations

from itertools import product

import pytest

from cancelsync import reasons

STATUSES = (
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
MARKETS = (*sorted(reasons.MARKETS), "GB", "gb", " uk ", "XX", "")
CONFIGURED = (*sorted(reasons.FAMILIES), *sorted(reasons.ALL_KEYS), "no_such_reason")


def test_translation_is_always_valid_for_market_and_status() -> None:
    """Exhaustively: the key is None or one reasons_for lists, of the configured family."""
    for reason, market, status in product(CONFIGURED, MARKETS, STATUSES):
        key = reasons.translate_reason(reason, market=market, order_status=status)
        valid = reasons.reasons_for(market, status)
        if key is None:
            continue
        assert key in valid, (reason, market, status, key)
        assert reasons.family_of(key) == reasons.family_of(reason)
        if reason in valid:
            assert key == reason  # a key already valid is kept verbatim


def test_every_family_with_a_key_is_found() -> None:
    """A family that has a key for the market and status always translates to it."""
    for market, status in product(sorted(reasons.MARKETS), STATUSES):
        valid = reasons.reasons_for(market, status)
        for key in valid:
            family = reasons.family_of(key)
            assert family is not None
            assert (
                reasons.translate_reason(family, market=market, order_status=status)
                == key
            )


def test_no_key_belongs_to_two_families() -> None:
    """Each key names one family, in every market and status table."""
    seen: dict[str, str] = {}
    for groups in reasons.REASON_TABLES.values():
        for table in groups.values():
            for family, key in table.items():
                assert seen.setdefault(key, family) == family, key


@pytest.mark.parametrize(
    ("reason", "market", "status", "expected"),
    [
        (
            "seller_cancel_paid_reason_address_not_deliver",
            "UK",
            "AWAITING_SHIPMENT",
            "seller_cancel_paid_reason_address_not_deliver_uk",
        ),
        (
            "seller_cancel_reason_out_of_stock",
            "GB",
            "ON_HOLD",
            "seller_cancel_reason_out_of_stock_uk",
        ),
        (
            "seller_cancel_reason_out_of_stock",
            "US",
            "UNPAID",
            "seller_cancel_unpaid_reason_out_of_stock",
        ),
        (
            "seller_cancel_unpaid_reason_wrong_price",
            "UK",
            "UNPAID",
            "seller_cancel_unpaid_reason_wrong_price_uk",
        ),
        (
            "buyer_hasnt_paid",
            "UK",
            "UNPAID",
            "seller_cancel_unpaid_reason_buyer_hasnt_paid_within_time_allowed_uk",
        ),
        (
            "seller_cancel_paid_reason_address_not_deliver",
            "SG",
            "AWAITING_SHIPMENT",
            "seller_cancel_unable_to_deliver_to_buyer_address",
        ),
        (
            "seller_cancel_unable_to_deliver_to_buyer_address",
            "MY",
            "ON_HOLD",
            "seller_cancel_paid_reason_address_not_deliver",
        ),
        (
            "buyer_requested",
            "PH",
            "UNPAID",
            "seller_cancel_unpaid_reason_buyer_requested_cancellation",
        ),
        (
            "potential_fraud",
            "JP",
            "AWAITING_SHIPMENT",
            "seller_cancel_order_reason_potential_fraud",
        ),
    ],
)
def test_translation_examples(
    reason: str, market: str, status: str, expected: str
) -> None:
    """UK keys get `_uk`, unpaid orders get unpaid keys, SG has its own address key."""
    assert (
        reasons.translate_reason(reason, market=market, order_status=status) == expected
    )


@pytest.mark.parametrize(
    ("reason", "market", "status"),
    [
        ("seller_cancel_paid_reason_address_not_deliver", "US", "UNPAID"),
        ("address_not_deliver", "UK", "UNPAID"),
        ("buyer_requested", "UK", "AWAITING_SHIPMENT"),
        ("buyer_requested", "UK", "UNPAID"),
        ("buyer_requested", "TH", "ON_HOLD"),
        ("buyer_hasnt_paid", "US", "AWAITING_SHIPMENT"),
        ("wrong_price", "BR", "ON_HOLD"),
        ("potential_fraud", "US", "UNPAID"),
        ("out_of_stock", "US", "IN_TRANSIT"),
        ("out_of_stock", "XX", "AWAITING_SHIPMENT"),
        ("no_such_reason", "US", "AWAITING_SHIPMENT"),
    ],
)
def test_translation_without_a_key_is_none(
    reason: str, market: str, status: str
) -> None:
    """No key for the (market, status): None, never a key TikTok would reject."""
    assert reasons.translate_reason(reason, market=market, order_status=status) is None


def test_uk_tables_follow_the_reference() -> None:
    """UK unpaid: the first three US keys + `_uk`; UK paid: no buyer-requested key."""
    us_unpaid = reasons.REASON_TABLES["US"][reasons.UNPAID]
    uk = reasons.REASON_TABLES["UK"]
    assert set(uk[reasons.UNPAID].values()) == {
        us_unpaid[f] + "_uk"
        for f in ("out_of_stock", "wrong_price", "buyer_hasnt_paid")
    }
    assert "buyer_requested" not in uk[reasons.PAID]
    assert all(key.endswith("_uk") for key in uk[reasons.PAID].values())


def test_out_of_stock_keys_exist_where_line_cancels_do() -> None:
    """US and UK (the line-cancel markets) have out-of-stock keys in every cancellable status."""
    for market, status in product(
        reasons.PARTIAL_CANCEL_MARKETS, reasons.CANCELLABLE_STATUSES
    ):
        key = reasons.translate_reason(
            "out_of_stock", market=market, order_status=status
        )
        assert key is not None
        assert reasons.is_out_of_stock(key)


def test_reasons_for_is_empty_outside_cancellable_statuses_and_markets() -> None:
    """Shipped, completed and cancelled orders, and unknown markets, have no seller keys."""
    for status in ("IN_TRANSIT", "DELIVERED", "COMPLETED", "CANCELLED"):
        assert reasons.reasons_for("US", status) == {}
    assert reasons.reasons_for("XX", "UNPAID") == {}
    assert reasons.reasons_for("gb", "UNPAID") == reasons.reasons_for("UK", "UNPAID")


def test_every_table_key_keeps_its_family_when_read_at_run_time() -> None:
    """family_of_key agrees with the tables for every known key."""
    for key in reasons.ALL_KEYS:
        assert reasons.family_of_key(key) == reasons.family_of(key)


@pytest.mark.parametrize(
    ("key", "family"),
    [
        ("seller_cancel_paid_reason_address_not_deliver_v2", "address_not_deliver"),
        ("seller_cancel_reason_unable_to_deliver_address_eu", "address_not_deliver"),
        ("seller_cancel_reason_out_of_stock_v3", "out_of_stock"),
        ("seller_cancel_reason_pricing_error", "wrong_price"),
        ("ecom_order_to_ship_canceled_reason_out_of_stock", None),  # a buyer key
        ("seller_cancel_reason_out_of_stock_or_wrong_price", None),  # two families
        ("seller_cancel_reason_other", None),
    ],
)
def test_a_key_listed_at_run_time_is_placed_by_its_words_or_not_at_all(
    key: str, family: str | None
) -> None:
    """Unknown seller keys get a family only when exactly one family's words match."""
    assert reasons.family_of_key(key) == family
