"""Cancel and reject reason tables of the TikTok Shop simulator (reference §5.4).

Seller keys per market and order status come from the reference. Buyer, system and
operator keys and every localized text are sandbox inventions that only follow the
reference's shapes (``ecom_order_*_canceled_reason_*``, "Autre"), so that a client that
confuses a key with its display text gets caught.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Market:
    """What the simulator needs to know about one TikTok market."""

    code: str  # cancelsync's market name (UK, not GB)
    region: str  # what /authorization/202309/shops reports (GB for the UK)
    currency: str
    language: str  # for localized reason texts


MARKETS: dict[str, Market] = {
    m.code: m
    for m in (
        Market("US", "US", "USD", "en"),
        Market("UK", "GB", "GBP", "en"),
        Market("IE", "IE", "EUR", "en"),
        Market("ES", "ES", "EUR", "es"),
        Market("FR", "FR", "EUR", "fr"),
        Market("DE", "DE", "EUR", "de"),
        Market("IT", "IT", "EUR", "it"),
        Market("ID", "ID", "IDR", "en"),
        Market("MY", "MY", "MYR", "en"),
        Market("TH", "TH", "THB", "en"),
        Market("SG", "SG", "SGD", "en"),
        Market("PH", "PH", "PHP", "en"),
        Market("BR", "BR", "BRL", "en"),
        Market("JP", "JP", "JPY", "en"),
    )
}

# Only these markets accept a line-level (partial) seller cancel, and only out of stock.
PARTIAL_CANCEL_MARKETS = frozenset({"US", "UK"})

UNPAID_STATUSES = frozenset({"UNPAID"})
PAID_CANCELLABLE_STATUSES = frozenset(
    {"ON_HOLD", "AWAITING_SHIPMENT", "PARTIALLY_SHIPPING"}
)

# key -> family; the family picks the display text.
_FAMILY: dict[str, str] = {
    "seller_cancel_unpaid_reason_out_of_stock": "out_of_stock",
    "seller_cancel_unpaid_reason_wrong_price": "wrong_price",
    "seller_cancel_unpaid_reason_buyer_hasnt_paid_within_time_allowed": "hasnt_paid",
    "seller_cancel_unpaid_reason_buyer_requested_cancellation": "buyer_requested",
    "seller_cancel_reason_out_of_stock": "out_of_stock",
    "seller_cancel_reason_wrong_price": "wrong_price",
    "seller_cancel_paid_reason_address_not_deliver": "address",
    "seller_cancel_paid_reason_buyer_requested_cancellation": "buyer_requested",
    "seller_cancel_unpaid_reason_out_of_stock_uk": "out_of_stock",
    "seller_cancel_unpaid_reason_wrong_price_uk": "wrong_price",
    "seller_cancel_unpaid_reason_buyer_hasnt_paid_within_time_allowed_uk": "hasnt_paid",
    "seller_cancel_reason_out_of_stock_uk": "out_of_stock",
    "seller_cancel_reason_wrong_price_uk": "wrong_price",
    "seller_cancel_paid_reason_address_not_deliver_uk": "address",
    "seller_cancel_unable_to_deliver_to_buyer_address": "address",
    "seller_cancel_order_reason_potential_fraud": "fraud",
    # buyer, system and operator keys (sandbox inventions in the documented shapes)
    "ecom_order_unpaid_canceled_reason_no_longer_needed": "no_longer_needed",
    "ecom_order_unpaid_canceled_reason_other": "other",
    "ecom_order_to_ship_canceled_reason_no_longer_needed": "no_longer_needed",
    "ecom_order_to_ship_canceled_reason_better_price": "better_price",
    "ecom_order_to_ship_canceled_reason_other": "other",
    "system_cancel_unpaid_time_out": "time_out",
    "system_cancel_package_delivery_failed": "delivery_failed",
    "operator_cancel_risk_control": "operator",
    "ecom_reverse_reject_cancel_reason_product_packed": "packed",
    "seller_reject_apply_product_has_been_packed": "packed",
}

_US_UNPAID = (
    "seller_cancel_unpaid_reason_out_of_stock",
    "seller_cancel_unpaid_reason_wrong_price",
    "seller_cancel_unpaid_reason_buyer_hasnt_paid_within_time_allowed",
    "seller_cancel_unpaid_reason_buyer_requested_cancellation",
)
_US_PAID = (
    "seller_cancel_reason_out_of_stock",
    "seller_cancel_reason_wrong_price",
    "seller_cancel_paid_reason_address_not_deliver",
    "seller_cancel_paid_reason_buyer_requested_cancellation",
)
_UK_UNPAID = tuple(k + "_uk" for k in _US_UNPAID[:3])
_UK_PAID = (
    "seller_cancel_reason_out_of_stock_uk",
    "seller_cancel_reason_wrong_price_uk",
    "seller_cancel_paid_reason_address_not_deliver_uk",
)
_SEA_UNPAID = _US_UNPAID[:3]
_SEA_PAID = _US_PAID[:3]
_SG_PAID = (*_US_PAID[:2], "seller_cancel_unable_to_deliver_to_buyer_address")
_FRAUD = "seller_cancel_order_reason_potential_fraud"

# market -> (UNPAID keys, ON_HOLD / AWAITING_SHIPMENT keys)
SELLER_REASONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "US": (_US_UNPAID, _US_PAID),
    **dict.fromkeys(("ES", "IE", "FR", "DE", "IT"), (_US_UNPAID, _US_PAID)),
    "UK": (_UK_UNPAID, _UK_PAID),
    **dict.fromkeys(("ID", "MY", "TH"), (_SEA_UNPAID, _SEA_PAID)),
    "SG": (_SEA_UNPAID, _SG_PAID),
    "PH": (_US_UNPAID, _US_PAID),
    "BR": (_US_UNPAID, tuple(k for k in _US_PAID if "wrong_price" not in k)),
    "JP": ((*_US_UNPAID, _FRAUD), (*_US_PAID, _FRAUD)),
}

BUYER_REASONS_UNPAID = (
    "ecom_order_unpaid_canceled_reason_no_longer_needed",
    "ecom_order_unpaid_canceled_reason_other",
)
BUYER_REASONS_PAID = (
    "ecom_order_to_ship_canceled_reason_no_longer_needed",
    "ecom_order_to_ship_canceled_reason_better_price",
    "ecom_order_to_ship_canceled_reason_other",
)
SYSTEM_REASONS = (
    "system_cancel_unpaid_time_out",
    "system_cancel_package_delivery_failed",
)
OPERATOR_REASONS = ("operator_cancel_risk_control",)

ALL_SELLER_KEYS = frozenset(
    key for unpaid, paid in SELLER_REASONS.values() for key in (*unpaid, *paid)
)
NON_SELLER_KEYS = frozenset(
    (*BUYER_REASONS_UNPAID, *BUYER_REASONS_PAID, *SYSTEM_REASONS, *OPERATOR_REASONS)
)

_TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "out_of_stock": "Out of stock",
        "wrong_price": "Pricing error",
        "address": "Unable to deliver to customer address",
        "buyer_requested": "Buyer requested cancellation",
        "hasnt_paid": "Buyer hasn't paid within time allowed",
        "fraud": "Potential fraud",
        "no_longer_needed": "No longer needed",
        "better_price": "Found a better price elsewhere",
        "other": "Other",
        "time_out": "Payment overdue",
        "delivery_failed": "Package delivery failed",
        "operator": "Cancelled by TikTok Shop",
        "packed": "Product has been packed",
    },
    "fr": {
        "out_of_stock": "Rupture de stock",
        "wrong_price": "Erreur de prix",
        "address": "Impossible de livrer à l'adresse du client",
        "buyer_requested": "Annulation demandée par l'acheteur",
        "hasnt_paid": "L'acheteur n'a pas payé dans le délai imparti",
        "no_longer_needed": "Plus nécessaire",
        "better_price": "Meilleur prix trouvé ailleurs",
        "other": "Autre",
        "time_out": "Paiement en retard",
        "delivery_failed": "Échec de la livraison du colis",
        "operator": "Annulé par TikTok Shop",
        "packed": "Le produit a été emballé",
    },
    "de": {
        "out_of_stock": "Nicht vorrätig",
        "wrong_price": "Preisfehler",
        "address": "Lieferung an die Kundenadresse nicht möglich",
        "buyer_requested": "Stornierung auf Wunsch des Käufers",
        "hasnt_paid": "Käufer hat nicht fristgerecht bezahlt",
        "no_longer_needed": "Nicht mehr benötigt",
        "better_price": "Woanders günstiger gefunden",
        "other": "Sonstiges",
        "time_out": "Zahlung überfällig",
        "delivery_failed": "Paketzustellung fehlgeschlagen",
        "operator": "Von TikTok Shop storniert",
        "packed": "Das Produkt wurde bereits verpackt",
    },
    "es": {
        "out_of_stock": "Sin existencias",
        "wrong_price": "Error de precio",
        "address": "No se puede entregar en la dirección del cliente",
        "buyer_requested": "Cancelación solicitada por el comprador",
        "hasnt_paid": "El comprador no ha pagado en el plazo permitido",
        "no_longer_needed": "Ya no lo necesito",
        "better_price": "Encontré un precio mejor",
        "other": "Otro",
        "time_out": "Pago vencido",
        "delivery_failed": "Error en la entrega del paquete",
        "operator": "Cancelado por TikTok Shop",
        "packed": "El producto ya está empaquetado",
    },
    "it": {
        "out_of_stock": "Esaurito",
        "wrong_price": "Errore di prezzo",
        "address": "Impossibile consegnare all'indirizzo del cliente",
        "buyer_requested": "Annullamento richiesto dall'acquirente",
        "hasnt_paid": "L'acquirente non ha pagato nei tempi previsti",
        "no_longer_needed": "Non più necessario",
        "better_price": "Trovato un prezzo migliore",
        "other": "Altro",
        "time_out": "Pagamento scaduto",
        "delivery_failed": "Consegna del pacco non riuscita",
        "operator": "Annullato da TikTok Shop",
        "packed": "Il prodotto è già stato imballato",
    },
}

_REJECT_US = ("ecom_reverse_reject_cancel_reason_product_packed",)
_REJECT_OTHER = ("seller_reject_apply_product_has_been_packed",)


def market_for_region(region: str) -> Market:
    """The market of a region or market code (``GB`` and ``UK`` both mean the UK)."""
    code = "UK" if region.upper() == "GB" else region.upper()
    try:
        return MARKETS[code]
    except KeyError:
        raise ValueError(
            f"the sandbox has no reason table for region {region!r}; "
            f"use one of {sorted(MARKETS)}"
        ) from None


def seller_reasons(market: str, status: str) -> tuple[str, ...]:
    """Seller cancel keys for an order in ``status`` in ``market`` (may be empty)."""
    unpaid, paid = SELLER_REASONS.get(market, ((), ()))
    if status in UNPAID_STATUSES:
        return unpaid
    if status in PAID_CANCELLABLE_STATUSES:
        return paid
    return ()


def seller_keys_for_market(market: str) -> frozenset[str]:
    """Every seller cancel key the market knows, whatever the status."""
    unpaid, paid = SELLER_REASONS.get(market, ((), ()))
    return frozenset((*unpaid, *paid))


def is_out_of_stock(key: str) -> bool:
    """Whether a seller key is an out-of-stock reason (it zeroes the SKU's stock)."""
    return _FAMILY.get(key) == "out_of_stock"


def reject_reasons(market: str) -> tuple[str, ...]:
    """Keys a seller may give when rejecting a buyer's cancel request."""
    return _REJECT_US if market == "US" else _REJECT_OTHER


def reason_text(key: str, language: str = "en") -> str:
    """The localized display text of a reason key (the key itself when unknown)."""
    family = _FAMILY.get(key)
    if family is None:
        return key
    texts = _TEXTS.get(language, _TEXTS["en"])
    return texts.get(family, _TEXTS["en"][family])
