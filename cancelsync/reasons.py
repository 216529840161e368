"""TikTok Shop seller-cancel reason keys by market and order status (reference §5.4).

Pure data and lookups, shared by config validation, the rules and ``cancelsync reasons``.
A merchant configures either a concrete key or a *family*; ``translate_reason`` picks the key
valid for one order's status and the shop's market (unpaid vs paid keys, ``_uk`` variants).
A shop's accepted keys can drift from these tables (a key retired, a successor listed by the
order's aftersale eligibility instead); ``family_of_key`` also places such unknown keys by the
words they carry, so a replacement is only ever taken from the configured family.
"""

from __future__ import annotations

from collections.abc import Mapping

FAMILIES: Mapping[str, str] = {
    "address_not_deliver": "the address cannot be delivered to",
    "out_of_stock": "out of stock (TikTok then sets the SKU's stock to 0)",
    "wrong_price": "pricing error",
    "buyer_requested": "the buyer asked to cancel",
    "buyer_hasnt_paid": "the buyer has not paid in time (unpaid orders only)",
    "potential_fraud": "potential fraud (JP only)",
}

UNPAID = "UNPAID"
PAID = "PAID"  # ON_HOLD and AWAITING_SHIPMENT share the paid table
CANCELLABLE_STATUSES = frozenset({"UNPAID", "ON_HOLD", "AWAITING_SHIPMENT"})

_US_UNPAID = {
    "out_of_stock": "seller_cancel_unpaid_reason_out_of_stock",
    "wrong_price": "seller_cancel_unpaid_reason_wrong_price",
    "buyer_hasnt_paid": "seller_cancel_unpaid_reason_buyer_hasnt_paid_within_time_allowed",
    "buyer_requested": "seller_cancel_unpaid_reason_buyer_requested_cancellation",
}
_US_PAID = {
    "out_of_stock": "seller_cancel_reason_out_of_stock",
    "wrong_price": "seller_cancel_reason_wrong_price",
    "address_not_deliver": "seller_cancel_paid_reason_address_not_deliver",
    "buyer_requested": "seller_cancel_paid_reason_buyer_requested_cancellation",
}
_UK_UNPAID = {
    family: key + "_uk"
    for family, key in _US_UNPAID.items()
    if family != "buyer_requested"
}
_UK_PAID = {
    "out_of_stock": "seller_cancel_reason_out_of_stock_uk",
    "wrong_price": "seller_cancel_reason_wrong_price_uk",
    "address_not_deliver": "seller_cancel_paid_reason_address_not_deliver_uk",
}
_SEA_UNPAID = {k: v for k, v in _US_UNPAID.items() if k != "buyer_requested"}
_SEA_PAID = {k: v for k, v in _US_PAID.items() if k != "buyer_requested"}
_SG_PAID = {
    **{k: v for k, v in _SEA_PAID.items() if k != "address_not_deliver"},
    "address_not_deliver": "seller_cancel_unable_to_deliver_to_buyer_address",
}
_JP_UNPAID = {
    **_US_UNPAID,
    "potential_fraud": "seller_cancel_order_reason_potential_fraud",
}
_JP_PAID = {**_US_PAID, "potential_fraud": "seller_cancel_order_reason_potential_fraud"}
_BR_PAID = {k: v for k, v in _US_PAID.items() if k != "wrong_price"}

# market -> status group -> family -> key
REASON_TABLES: Mapping[str, Mapping[str, Mapping[str, str]]] = {
    **{
        m: {UNPAID: _US_UNPAID, PAID: _US_PAID}
        for m in ("US", "ES", "IE", "FR", "DE", "IT")
    },
    "UK": {UNPAID: _UK_UNPAID, PAID: _UK_PAID},
    **{m: {UNPAID: _SEA_UNPAID, PAID: _SEA_PAID} for m in ("ID", "MY", "TH")},
    "SG": {UNPAID: _SEA_UNPAID, PAID: _SG_PAID},
    "PH": {UNPAID: _US_UNPAID, PAID: _US_PAID},
    "BR": {UNPAID: _US_UNPAID, PAID: _BR_PAID},
    "JP": {UNPAID: _JP_UNPAID, PAID: _JP_PAID},
}
MARKETS = frozenset(REASON_TABLES)
# Markets whose sellers may cancel single lines (item level), out-of-stock reasons only.
PARTIAL_CANCEL_MARKETS = frozenset({"US", "UK"})

_KEY_TO_FAMILY: dict[str, str] = {
    key: family
    for groups in REASON_TABLES.values()
    for table in groups.values()
    for family, key in table.items()
}
ALL_KEYS = frozenset(_KEY_TO_FAMILY)


def normalize_market(region: str) -> str:
    """TikTok regions to our market codes (GB → UK), upper-cased."""
    region = region.strip().upper()
    return "UK" if region == "GB" else region


def status_group(order_status: str) -> str | None:
    """``UNPAID`` / ``PAID`` for statuses a seller can cancel in, else ``None``."""
    if order_status == "UNPAID":
        return UNPAID
    if order_status in ("ON_HOLD", "AWAITING_SHIPMENT"):
        return PAID
    return None


def family_of(reason: str) -> str | None:
    """The family a configured reason belongs to (a family name or a known key)."""
    if reason in FAMILIES:
        return reason
    return _KEY_TO_FAMILY.get(reason)


# Words that name a family inside a seller key, for keys TikTok lists at run time that are
# not in the tables (e.g. a renamed successor). Checked on seller_* keys only.
_FAMILY_WORDS: Mapping[str, tuple[str, ...]] = {
    "address_not_deliver": ("address",),
    "out_of_stock": ("out_of_stock",),
    "wrong_price": ("wrong_price", "pricing"),
    "buyer_requested": ("buyer_requested",),
    "buyer_hasnt_paid": ("hasnt_paid",),
    "potential_fraud": ("fraud",),
}


def family_of_key(key: str) -> str | None:
    """The family of a seller key: from the tables, else from the words in it.

    An unknown key counts only when it is a ``seller_*`` key and exactly one family's
    words appear in it; otherwise ``None`` (never guessed into a family).
    """
    known = _KEY_TO_FAMILY.get(key)
    if known is not None:
        return known
    lowered = key.lower()
    if not lowered.startswith("seller_"):
        return None
    found = [
        f for f, words in _FAMILY_WORDS.items() if any(w in lowered for w in words)
    ]
    return found[0] if len(found) == 1 else None


def is_known_reason(reason: str) -> bool:
    return family_of(reason) is not None


def translate_reason(reason: str, *, market: str, order_status: str) -> str | None:
    """The key valid for this market and order status, or ``None`` when there is none.

    A configured key that is already valid for the status is kept verbatim; otherwise its
    family is looked up (so ``seller_cancel_paid_reason_address_not_deliver`` becomes the
    ``_uk`` key on a UK shop, and ``out_of_stock`` becomes the unpaid key on an UNPAID order).
    """
    group = status_group(order_status)
    tables = REASON_TABLES.get(normalize_market(market))
    if group is None or tables is None:
        return None
    table = tables[group]
    if reason in table.values():
        return reason
    family = family_of(reason)
    if family is None:
        return None
    return table.get(family)


def reasons_for(market: str, order_status: str) -> dict[str, str]:
    """``{key: meaning}`` of the keys valid for a market and status (empty if none)."""
    group = status_group(order_status)
    tables = REASON_TABLES.get(normalize_market(market))
    if group is None or tables is None:
        return {}
    return {key: FAMILIES[family] for family, key in tables[group].items()}


def is_out_of_stock(key: str) -> bool:
    return family_of(key) == "out_of_stock"
