"""TikTok seller cancel reasons: families, markets, status groups and translation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cancelsync import reasons
from cancelsync.reasons import (
    ALL_KEYS,
    FAMILIES,
    MARKETS,
    REASON_TABLES,
    family_of,
    is_known_reason,
    is_out_of_stock,
    normalize_market,
    reasons_for,
    status_group,
    translate_reason,
)

ADDRESS_PAID = "seller_cancel_paid_reason_address_not_deliver"


@pytest.mark.parametrize(
    ("region", "market"),
    [("GB", "UK"), ("gb", "UK"), (" us ", "US"), ("UK", "UK"), ("jp", "JP")],
)
def test_normalize_market(region: str, market: str) -> None:
    """TikTok's GB region is our UK market; case and spaces are ignored."""
    assert normalize_market(region) == market


@pytest.mark.parametrize(
    ("status", "group"),
    [("UNPAID", "UNPAID"), ("ON_HOLD", "PAID"), ("AWAITING_SHIPMENT", "PAID"),
     ("AWAITING_COLLECTION", None), ("IN_TRANSIT", None), ("CANCELLED", None),
     ("COMPLETED", None), ("", None)],
)  # fmt: skip
def test_status_group(status: str, group: str | None) -> None:
    """Only UNPAID, ON_HOLD and AWAITING_SHIPMENT orders can be cancelled by the seller."""
    assert status_group(status) == group
    assert (status in reasons.CANCELLABLE_STATUSES) == (group is not None)


def test_every_key_belongs_to_a_known_family() -> None:
    """Each key in the tables maps back to one documented family."""
    for key in ALL_KEYS:
        family = family_of(key)
        assert family in FAMILIES
        assert is_known_reason(key)
    for family in FAMILIES:
        assert family_of(family) == family
    assert family_of("nonsense") is None
    assert not is_known_reason("seller_cancel_reason_nonsense")


def test_markets() -> None:
    """The markets table covers US, UK, EU, SEA, BR and JP; only US/UK cancel by line."""
    assert set(MARKETS) == {
        "US", "UK", "ES", "IE", "FR", "DE", "IT", "ID", "MY", "TH", "SG", "PH", "BR", "JP",
    }  # fmt: skip
    assert set(reasons.PARTIAL_CANCEL_MARKETS) == {"US", "UK"}
    assert "GB" not in MARKETS


@pytest.mark.parametrize(
    ("reason", "market", "status", "expected"),
    [
        # A key valid for the status is kept as is.
        (ADDRESS_PAID, "US", "AWAITING_SHIPMENT", ADDRESS_PAID),
        # The same key becomes its _uk variant on a UK shop (GB is UK).
        (ADDRESS_PAID, "UK", "ON_HOLD", ADDRESS_PAID + "_uk"),
        (ADDRESS_PAID, "GB", "ON_HOLD", ADDRESS_PAID + "_uk"),
        # A family picks the unpaid or paid key by status.
        ("out_of_stock", "US", "UNPAID", "seller_cancel_unpaid_reason_out_of_stock"),
        ("out_of_stock", "US", "AWAITING_SHIPMENT", "seller_cancel_reason_out_of_stock"),
        ("out_of_stock", "UK", "UNPAID", "seller_cancel_unpaid_reason_out_of_stock_uk"),
        # A paid key on an unpaid order is translated through its family.
        ("seller_cancel_reason_wrong_price", "US", "UNPAID",
         "seller_cancel_unpaid_reason_wrong_price"),
        # A UK key used on a US shop becomes the US key.
        ("seller_cancel_reason_out_of_stock_uk", "US", "ON_HOLD",
         "seller_cancel_reason_out_of_stock"),
        # SG has its own address key.
        ("address_not_deliver", "SG", "AWAITING_SHIPMENT",
         "seller_cancel_unable_to_deliver_to_buyer_address"),
        ("potential_fraud", "JP", "UNPAID", "seller_cancel_order_reason_potential_fraud"),
        ("buyer_requested", "US", "ON_HOLD",
         "seller_cancel_paid_reason_buyer_requested_cancellation"),
    ],
)  # fmt: skip
def test_translate_reason(reason: str, market: str, status: str, expected: str) -> None:
    """A configured key or family becomes the key valid for the market and order status."""
    assert translate_reason(reason, market=market, order_status=status) == expected


@pytest.mark.parametrize(
    ("reason", "market", "status"),
    [
        ("address_not_deliver", "US", "UNPAID"),  # no unpaid address reason
        ("buyer_requested", "UK", "ON_HOLD"),  # not offered in the UK
        ("buyer_requested", "MY", "UNPAID"),  # nor in SEA
        ("wrong_price", "BR", "AWAITING_SHIPMENT"),  # nor paid wrong-price in BR
        ("potential_fraud", "US", "UNPAID"),  # JP only
        ("out_of_stock", "US", "IN_TRANSIT"),  # too late to cancel
        ("out_of_stock", "XX", "UNPAID"),  # unknown market
        ("not_a_reason", "US", "UNPAID"),
    ],
)
def test_translate_reason_without_a_valid_key(
    reason: str, market: str, status: str
) -> None:
    """When no key fits the market and status, translation returns None."""
    assert translate_reason(reason, market=market, order_status=status) is None


def test_reasons_for_lists_keys_with_meanings() -> None:
    """reasons_for() gives the valid keys and what they mean, or nothing."""
    uk_paid = reasons_for("GB", "AWAITING_SHIPMENT")
    assert uk_paid == {
        "seller_cancel_reason_out_of_stock_uk": FAMILIES["out_of_stock"],
        "seller_cancel_reason_wrong_price_uk": FAMILIES["wrong_price"],
        ADDRESS_PAID + "_uk": FAMILIES["address_not_deliver"],
    }
    assert reasons_for("US", "COMPLETED") == {}
    assert reasons_for("XX", "UNPAID") == {}


def test_is_out_of_stock() -> None:
    """Out-of-stock keys of any market are recognised; others are not."""
    assert is_out_of_stock("seller_cancel_unpaid_reason_out_of_stock_uk")
    assert is_out_of_stock("out_of_stock")
    assert not is_out_of_stock(ADDRESS_PAID)


@given(
    reason=st.sampled_from(sorted(ALL_KEYS | set(FAMILIES))),
    market=st.sampled_from(sorted(MARKETS | {"GB"})),
    status=st.sampled_from(["UNPAID", "ON_HOLD", "AWAITING_SHIPMENT", "IN_TRANSIT"]),
)
def test_translation_is_valid_and_keeps_the_family(
    reason: str, market: str, status: str
) -> None:
    """A translated key is valid for that market and status and has the same family."""
    key = translate_reason(reason, market=market, order_status=status)
    if key is None:
        return
    group = status_group(status)
    assert group is not None
    assert key in REASON_TABLES[normalize_market(market)][group].values()
    assert family_of(key) == family_of(reason)
    assert translate_reason(key, market=market, order_status=status) == key
