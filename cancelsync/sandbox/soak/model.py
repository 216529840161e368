"""The soak world's data: the stores, the fates an order can have, and what each order
must end up with (``Expect``). ``world`` plays them; ``oracle`` checks them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

CENT = 0.005  # money compares within half a cent (amounts are 2-decimal floats)


@dataclass(frozen=True)
class StorePlan:
    """One configured store and the Magento store view its orders are imported into."""

    key: str
    name: str
    market: str
    magento_store_id: int
    restock: bool
    cancel_to_refund: bool
    refund_to_cancel: bool
    partial_refunds: str
    include_seller: bool
    seller_center_reason: str
    hold_on_request: bool = False

    @property
    def holds(self) -> bool:
        """cancelsync holds this store's orders while a buyer's request is pending."""
        return self.hold_on_request and self.cancel_to_refund

    def spec_options(self) -> dict[str, Any]:
        return {
            "market": self.market,
            "magento_store_ids": (self.magento_store_id,),
            "refund_to_cancel": self.refund_to_cancel,
            "partial_refunds": self.partial_refunds,
            "cancel_to_refund": self.cancel_to_refund,
            "restock": self.restock,
            "include_seller_cancellations": self.include_seller,
            "hold_on_request": self.hold_on_request,
        }


# A: US, restock on, partial credit memos cancel TikTok lines, seller cancels mirrored (so
# the echo guard, not the role filter, keeps our own cancels from coming back).
# B: UK, restock off, partial memos only reported. C: both directions off.
# Holds (hold_on_request) only in A: B plays the same request fates with holds off, so
# "off" is checked under the same chaos (not one hold or unhold request there).
STORES = (
    StorePlan("A", "us-main", "US", 1, True, True, True, "cancel_items", True,
              "seller_cancel_reason_wrong_price", hold_on_request=True),
    StorePlan("B", "uk-main", "UK", 2, False, True, True, "report", False,
              "seller_cancel_reason_wrong_price_uk"),
    StorePlan("C", "us-quiet", "US", 3, True, False, False, "report", False,
              "seller_cancel_reason_wrong_price"),
)  # fmt: skip
STORE_WEIGHTS = (45, 45, 10)

# fate -> weight, for imported orders of stores with directions on. Each fate is a list of
# steps (name, waves after the previous step).
FATES: dict[str, tuple[int, tuple[tuple[str, int], ...]]] = {
    "quiet": (22, ()),
    "shipped": (6, (("ship", 0),)),
    "buyer_full": (8, (("cancel_full:BUYER", 0),)),
    "system_full": (4, (("cancel_full:SYSTEM", 0),)),
    "operator_full": (2, (("cancel_full:OPERATOR", 0),)),
    "partial": (4, (("cancel_part:BUYER", 0),)),
    "partial_system": (2, (("cancel_part:SYSTEM", 0),)),
    "partial_rest": (4, (("cancel_part:BUYER", 0), ("cancel_rest:SYSTEM", 2))),
    "request_approved": (4, (("request", 0), ("approve", 2))),
    "request_withdrawn": (2, (("request", 0), ("withdraw", 2))),
    "seller_center": (2, (("seller_center", 0),)),
    "uninvoiced_cancel": (2, (("cancel_full:BUYER", 0),)),
    "memo_full": (8, (("memo_full", 0),)),
    "memo_full_request": (2, (("request", 0), ("memo_full", 1))),
    "memo_partial": (5, (("memo_part", 0),)),
    "memo_twice": (2, (("memo_part", 0), ("memo_rest", 2))),
    "memo_shipped": (3, (("ship", 0), ("memo_any", 0))),
    "memo_late": (2, (("memo_late", 0),)),
    # Buyer requests that stay pending across worker runs (held in store A meanwhile),
    # then answered; some on orders the merchant held, or shipped, in Magento first.
    "request_rejected": (3, (("request", 0), ("reject", 2))),
    "request_auto": (2, (("request", 0), ("auto_approve", 2))),
    "request_pending": (2, (("request", 0),)),  # still pending at the end
    "merchant_hold_rejected": (
        1,
        (("merchant_hold", 0), ("request", 0), ("reject", 2)),
    ),
    "merchant_hold_approved": (
        1,
        (("merchant_hold", 0), ("request", 0), ("approve", 2)),
    ),
    "merchant_hold_pending": (1, (("merchant_hold", 0), ("request", 0))),
    "magento_shipped_request": (
        1,
        (("magento_ship", 0), ("request", 1), ("reject", 2)),
    ),
    "magento_shipped_pending": (1, (("magento_ship", 0), ("request", 1))),
}
HOLD_FATES = frozenset(
    {"request_rejected", "request_auto", "request_pending", "merchant_hold_rejected",
     "merchant_hold_approved", "merchant_hold_pending", "magento_shipped_request",
     "magento_shipped_pending"}
)  # fmt: skip
DISABLED_FATES = ("quiet", "buyer_full", "partial", "memo_full", "memo_partial")
MULTI_UNIT_FATES = frozenset(
    {"partial", "partial_system", "partial_rest", "memo_partial", "memo_twice"}
)
LATE_SECONDS = (15, 90)  # how far a late cancellation is backdated
LATE_COMMIT_SECONDS = (1.0, 8.0)  # how long a late credit memo stays uncommitted
NOT_IMPORTED_SHARE = 0.04
FOREIGN_SHARE = 0.01


@dataclass(frozen=True)
class RefundExpect:
    """One Magento credit memo cancelsync must create for a TikTok cancellation."""

    cancel_id: str
    units: Counter[str]
    shipping: float
    restock: bool


@dataclass
class Expect:
    """What the worker must have done about one order once everything settled."""

    origin: str | None = None  # "tiktok" | "magento": where the order's events start
    refunds: list[RefundExpect] = field(default_factory=list)
    magento_cancel: bool = False  # nothing invoiced: the Magento order is cancelled
    tiktok_units: Counter[str] = field(default_factory=Counter)  # cancelled by our API
    approve: str | None = None  # the buyer request cancelsync must approve
    attention: str | None = None  # an attention item must exist (why)
    attention_allowed: bool = False  # one may exist (e.g. memo_twice under "report")
    quiet: str | None = None  # no worker write may touch this order at all (why)


@dataclass
class Line:
    sku: str
    qty: int
    price: float
    product_type: str


@dataclass
class SoakOrder:
    """One order of the world, its fate, its live state as the driver sees it."""

    index: int
    store: StorePlan
    fate: str
    lines: list[Line]
    shipping: float
    invoiced: bool = True
    tiktok_order_id: str = ""  # empty for a foreign (non-TikTok) Magento order
    magento_entity_id: int | None = None  # None: never imported
    magento_increment_id: str = ""
    units: dict[str, list[str]] = field(default_factory=dict)  # sku -> TikTok line ids
    live: dict[str, list[str]] = field(default_factory=dict)  # not cancelled yet
    refunded: Counter[str] = field(default_factory=Counter)  # merchant memos so far
    shipping_expected: float = 0.0  # shipping our refunds must have refunded so far
    shipped: bool = False
    request_id: str | None = None
    # How the buyer's request ended, as the driver made it end: pending, rejected,
    # withdrawn, approved (Seller Center), auto_approved (TikTok's deadline) or
    # merchant_memo (the merchant refunded in full; cancelsync approves it).
    request_outcome: str | None = None
    merchant_held: bool = False  # the merchant put the Magento order on hold
    magento_shipped: bool = False  # shipped in Magento (not on TikTok)
    seller_center_ids: set[str] = field(default_factory=set)
    merchant_memo_ids: list[int] = field(default_factory=list)
    tiktok_events: list[str] = field(default_factory=list)  # cancel ids (any actor)
    expect: Expect = field(default_factory=Expect)

    @property
    def holdable(self) -> bool:
        """cancelsync must hold this order while its buyer's request is pending: a hold
        store, imported and invoiced, neither held by the merchant nor shipped in
        Magento (decided by the world, not by the worker)."""
        return (
            self.store.holds
            and self.request_id is not None
            and self.magento_entity_id is not None
            and self.invoiced
            and not self.merchant_held
            and not self.magento_shipped
        )

    @property
    def total_units(self) -> int:
        return sum(line.qty for line in self.lines)

    def live_units(self) -> Counter[str]:
        return Counter({sku: len(ids) for sku, ids in self.live.items() if ids})


@dataclass(frozen=True)
class Step:
    wave: int
    order: int
    name: str


@dataclass
class Tally:
    """What the driver did to the world (the "events" figures)."""

    counts: Counter[str] = field(default_factory=Counter)
    # Steps the world no longer allowed (the worker, or the driver, did something else).
    skipped: list[str] = field(default_factory=list)
