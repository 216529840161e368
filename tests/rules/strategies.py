"""Builders and hypothesis strategies for the rule tests: Magento and TikTok facts that agree.

A Magento order holds simple rows and configurable pairs (the parent row carries the qty,
the price and the child's SKU; the child simple row points at it), and, for direction B,
bundles: a fixed-price one carries its price on the parent (children priced 0), a
dynamic-price one on its children (the parent shows their sum, and its ``qty_refunded``
jumps to ``qty_invoiced`` on the first refund of its children, as Magento books it). The TikTok order has one
line per unit, keyed by ``seller_sku`` = the Magento SKU. Totals follow the item rows, with an
optional discount so refund plans can hit the "no more than was paid" guard.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import strategies as st

from cancelsync import reasons
from cancelsync.config import CancelToRefundConfig, RefundToCancelConfig
from cancelsync.models import (
    MagentoCreditMemo,
    MagentoCreditMemoItem,
    MagentoItem,
    MagentoOrder,
    TikTokCancellation,
    TikTokCancelLine,
    TikTokLine,
    TikTokOrder,
)
from cancelsync.rules.decisions import marker
from cancelsync.rules.magento_to_tiktok import CreditMemoFacts
from cancelsync.rules.tiktok_to_magento import CancellationFacts

T0 = datetime(2026, 11, 1, 12, tzinfo=UTC)
TIKTOK_ORDER_ID = "576461413038785752"
MAGENTO_ENTITY_ID = 4242
ZERO = Decimal("0")

MAGENTO_STATES = (
    "new",
    "processing",
    "complete",
    "closed",
    "canceled",
    "holded",
    "payment_review",
)
TIKTOK_STATUSES = (
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
CANCEL_STATUSES = (
    "CANCELLATION_REQUEST_COMPLETE",
    "CANCELLATION_REQUEST_SUCCESS",
    "CANCELLATION_REQUEST_PENDING",
    "CANCELLATION_REQUEST_CANCEL",
    "CANCELLATION_REQUEST_CANCELLED",
)
CANCELLABLE = ("UNPAID", "ON_HOLD", "AWAITING_SHIPMENT")
ACCEPTED = CANCEL_STATUSES[:2]
COUNTED = ("BUYER", "SYSTEM", "OPERATOR")
ROLES = ("BUYER", "SELLER", "SYSTEM", "OPERATOR", "")
# Families, every concrete key, and a key no market knows.
CONFIGURED_REASONS = (
    *sorted(reasons.FAMILIES),
    *sorted(reasons.ALL_KEYS),
    "no_such_reason",
)


# ----------------------------------------------------------------------------- builders


def simple(
    item_id: int,
    sku: str,
    qty: int,
    *,
    invoiced: int | None = None,
    refunded: int = 0,
    price: str = "10.00",
) -> tuple[MagentoItem, ...]:
    """One plain simple row."""
    inv = qty if invoiced is None else invoiced
    return (
        MagentoItem(
            item_id,
            sku,
            "simple",
            Decimal(qty),
            Decimal(inv),
            Decimal(refunded),
            price=Decimal(price),
        ),
    )


def configurable(
    item_id: int,
    sku: str,
    qty: int,
    *,
    invoiced: int | None = None,
    refunded: int = 0,
    price: str = "10.00",
) -> tuple[MagentoItem, ...]:
    """A configurable parent row (qty, price) and its child simple row (id + 1)."""
    inv = qty if invoiced is None else invoiced
    parent = MagentoItem(
        item_id,
        sku,
        "configurable",
        Decimal(qty),
        Decimal(inv),
        Decimal(refunded),
        price=Decimal(price),
    )
    child = MagentoItem(
        item_id + 1,
        sku,
        "simple",
        Decimal(qty),
        Decimal(inv),
        Decimal(refunded),
        parent_item_id=item_id,
    )
    return parent, child


BUNDLE_SELECTIONS = (("A", 1, "10.00"), ("B", 2, "5.00"))


def bundle(
    item_id: int,
    sku: str,
    qty: int,
    *,
    dynamic: bool,
    invoiced: int | None = None,
    refunded: int = 0,
    price: str = "20.00",
    selections: tuple[tuple[str, int, str], ...] = BUNDLE_SELECTIONS,
) -> tuple[MagentoItem, ...]:
    """A bundle parent row and one child simple per selection (ids ``item_id + n``).

    ``selections`` are ``(sku suffix, qty per bundle, unit price)``; the prices count
    only when ``dynamic`` (the fixed bundle's price is ``price``). ``refunded`` counts
    whole bundles.
    """
    inv = qty if invoiced is None else invoiced
    total = sum((Decimal(p) * per for _, per, p in selections), ZERO)
    parent = MagentoItem(
        item_id,
        sku,
        "bundle",
        Decimal(qty),
        Decimal(inv),
        Decimal(inv if dynamic and refunded else refunded),
        price=total if dynamic else Decimal(price),
    )
    children = tuple(
        MagentoItem(
            item_id + n,
            f"{sku}-{suffix}",
            "simple",
            Decimal(per * qty),
            Decimal(per * inv),
            Decimal(per * refunded),
            parent_item_id=item_id,
            price=Decimal(unit) if dynamic else ZERO,
        )
        for n, (suffix, per, unit) in enumerate(selections, start=1)
    )
    return (parent, *children)


def _money_rows(items: tuple[MagentoItem, ...]) -> tuple[MagentoItem, ...]:
    """The rows whose price x qty make the order's money (``refund_rows``)."""
    return MagentoOrder(0, "", "new", "new", None, None, items).refund_rows


def make_order(
    *groups: tuple[MagentoItem, ...],
    state: str = "processing",
    shipping: str = "5.00",
    shipping_refunded: str = "0",
    shipping_tax: str = "0",
    discount: str = "0",
    refunded_extra: str = "0",
) -> MagentoOrder:
    """A Magento order whose money totals follow its top-level rows.

    Shipping tax counts as refunded once the shipping is (Magento refunds them
    together when ``shipping_amount`` is left out).
    """
    items = tuple(it for group in groups for it in group)
    top = _money_rows(items)
    ship, ship_tax = Decimal(shipping), Decimal(shipping_tax)
    ship_refunded = Decimal(shipping_refunded)
    tax_refunded = ship_tax if ship and ship_refunded >= ship else ZERO
    invoiced_any = any(it.qty_invoiced > 0 for it in top)
    invoiced = sum((it.price * it.qty_invoiced for it in top), ZERO)
    invoiced += (ship + ship_tax if invoiced_any else ZERO) - Decimal(discount)
    invoiced = max(invoiced, ZERO)
    refunded = sum((it.price * it.qty_refunded for it in top), ZERO)
    refunded += ship_refunded + tax_refunded + Decimal(refunded_extra)
    return MagentoOrder(
        magento_entity_id=MAGENTO_ENTITY_ID,
        magento_increment_id="000000042",
        state=state,
        status=state,
        store_id=1,
        tiktok_order_id=TIKTOK_ORDER_ID,
        items=items,
        grand_total=sum((it.price * it.qty_ordered for it in top), ZERO)
        + ship
        + ship_tax,
        total_paid=invoiced,
        total_invoiced=invoiced,
        total_refunded=min(refunded, invoiced),
        shipping_amount=ship,
        shipping_refunded=ship_refunded,
        shipping_tax_amount=ship_tax,
        shipping_tax_refunded=tax_refunded,
    )


def tiktok_lines_for(
    order: MagentoOrder,
    *,
    display_status: str = "AWAITING_SHIPMENT",
    cancelled: frozenset[str] = frozenset(),
) -> tuple[TikTokLine, ...]:
    """One TikTok line per ordered unit of each top-level row (ids ``L<item>-<n>``)."""
    lines = []
    for it in order.top_level_items:
        for n in range(int(it.qty_ordered)):
            line_id = f"L{it.item_id}-{n}"
            status = "CANCELLED" if line_id in cancelled else display_status
            lines.append(TikTokLine(line_id, f"tt-{it.sku}", it.sku, status, it.price))
    return tuple(lines)


def make_tiktok_order(
    order: MagentoOrder,
    status: str = "AWAITING_SHIPMENT",
    *,
    cancelled: frozenset[str] = frozenset(),
) -> TikTokOrder:
    """The TikTok side of ``order``; a CANCELLED order has every line cancelled."""
    display = "CANCELLED" if status == "CANCELLED" else status
    lines = tiktok_lines_for(order, display_status=display, cancelled=cancelled)
    return TikTokOrder(TIKTOK_ORDER_ID, status, T0, lines)


def make_cancellation(
    lines: tuple[TikTokLine, ...] = (),
    *,
    role: str = "BUYER",
    status: str = "CANCELLATION_REQUEST_COMPLETE",
    cancel_type: str = "BUYER_CANCEL",
    cancel_id: str = "4035012345678",
) -> TikTokCancellation:
    """A TikTok cancellation of ``lines`` (none listed: the whole order)."""
    cancel_lines = tuple(
        TikTokCancelLine(
            f"C-{line.line_id}", line.line_id, line.sku_id, line.seller_sku
        )
        for line in lines
    )
    return TikTokCancellation(
        cancel_id,
        TIKTOK_ORDER_ID,
        cancel_type,
        status,
        role,
        T0,
        T0,
        lines=cancel_lines,
    )


def make_memo(
    order: MagentoOrder, rows: dict[int, int], *, comments: tuple[str, ...] = ()
) -> MagentoCreditMemo:
    """A credit memo refunding ``{order_item_id: qty}``; configurable children are echoed."""
    items = []
    for item_id, qty in rows.items():
        it = order.item(item_id)
        assert it is not None
        items.append(MagentoCreditMemoItem(item_id, it.sku, Decimal(qty)))
        items.extend(
            MagentoCreditMemoItem(child.item_id, child.sku, Decimal(qty))
            for child in order.children_of(item_id)
        )
    return MagentoCreditMemo(
        9001, order.magento_entity_id, T0, items=tuple(items), comments=comments
    )


# ----------------------------------------------------------------------------- strategies


def _rarely(draw: st.DrawFn) -> bool:
    """True now and then (one choice in ten; hypothesis likes the edges, so more often)."""
    rare: bool = draw(st.sampled_from((False,) * 9 + (True,)))
    return rare


def lists_of(values: list[str], min_size: int = 0) -> st.SearchStrategy[list[str]]:
    """Distinct picks from ``values``."""
    return st.lists(st.sampled_from(values), min_size=min_size, unique=True)


def _cents(lo: int, hi: int) -> st.SearchStrategy[Decimal]:
    return st.integers(lo, hi).map(lambda c: Decimal(c) / 100)


@st.composite
def magento_orders(
    draw: st.DrawFn,
    *,
    invoicing: str | None = None,
    all_refunded: bool = False,
    states: tuple[str, ...] = MAGENTO_STATES,
    discounted: bool | None = None,
    bundles: bool = False,
) -> MagentoOrder:
    """Orders of 1-4 SKUs (simple or configurable), invoiced fully, partly or not at all.

    Each row has some of its invoiced units refunded (all of them with ``all_refunded``).
    ``bundles`` adds fixed- and dynamic-price bundles to the mix.
    """
    mode = invoicing or draw(
        st.sampled_from(("full", "full", "full", "none", "partly"))
    )
    groups = []
    for i in range(draw(st.integers(1, 4))):
        qty = draw(st.integers(1, 3))
        if mode == "full":
            inv = qty
        elif mode == "none":
            inv = 0
        else:
            inv = draw(st.integers(0, qty))
        kinds = (
            ("simple", "configurable", "fixed", "dynamic")
            if bundles
            else ("simple", "configurable")
        )
        kind = draw(st.sampled_from(kinds))
        refunded = inv if all_refunded else draw(st.integers(0, inv))
        price = str(draw(_cents(1, 5000)))
        if kind in ("fixed", "dynamic"):
            picks = ((f"X{n}", draw(st.integers(1, 3)), str(draw(_cents(1, 2000))))
                     for n in range(draw(st.integers(1, 3))))  # fmt: skip
            group = bundle(100 + 10 * i, f"SKU-{i}", qty, dynamic=kind == "dynamic",
                           invoiced=inv, refunded=refunded, price=price,
                           selections=tuple(picks))  # fmt: skip
        else:
            build = configurable if kind == "configurable" else simple
            group = build(100 + 10 * i, f"SKU-{i}", qty, invoiced=inv,
                          refunded=refunded, price=price)  # fmt: skip
        groups.append(group)
    shipping = draw(_cents(0, 1500))
    shipping_tax = draw(_cents(0, 300)) if shipping and draw(st.booleans()) else ZERO
    rows = _money_rows(tuple(it for g in groups for it in g))
    top_done = all(r.qty_refunded >= r.qty_invoiced for r in rows)
    ship_refunded = draw(st.sampled_from((ZERO, shipping))) if top_done else ZERO
    # Now and then a discount (less was paid) or an adjustment (more was refunded).
    if discounted is None:
        discounted = _rarely(draw)
    discount = draw(_cents(0, 3000)) if discounted else ZERO
    extra = draw(_cents(0, 500)) if _rarely(draw) else ZERO
    state = draw(st.sampled_from(("processing", "processing", "complete", *states)))
    return make_order(
        *groups,
        state=state,
        shipping=str(shipping),
        shipping_refunded=str(ship_refunded),
        shipping_tax=str(shipping_tax),
        discount=str(discount),
        refunded_extra=str(extra),
    )


@st.composite
def refund_cases(
    draw: st.DrawFn, *, refundable: bool = False
) -> tuple[CancellationFacts, MagentoOrder, CancelToRefundConfig]:
    """Direction B facts: a cancellation of some TikTok lines, the order after it, settings.

    ``refundable`` narrows to what reaches the refund plan: an accepted, counted
    cancellation that is not ours, on an invoiced, open Magento order.
    """
    if refundable:
        order = draw(
            magento_orders(
                invoicing="full",
                states=("processing", "complete"),
                discounted=draw(st.booleans()),
                bundles=True,
            )
        )
    else:
        order = draw(magento_orders(bundles=True))
    before = make_tiktok_order(order)
    line_ids = [line.line_id for line in before.lines]
    whole_listing = _rarely(draw)  # no lines listed: the whole order
    picked = [] if whole_listing else draw(lists_of(line_ids, min_size=1))
    listed = tuple(line for line in before.lines if line.line_id in picked)
    if _rarely(draw):  # now and then a SKU the Magento order lacks
        listed += (TikTokLine("L-foreign", "tt-FOREIGN", "FOREIGN", "CANCELLED"),)
    cancelled = frozenset(picked) | frozenset(
        draw(lists_of(line_ids)) if draw(st.booleans()) else ()
    )
    all_gone = not listed or cancelled >= set(line_ids)
    after = make_tiktok_order(
        order, "CANCELLED" if all_gone else "AWAITING_SHIPMENT", cancelled=cancelled
    )
    cancellation = make_cancellation(
        listed,
        role=draw(st.sampled_from(COUNTED if refundable else COUNTED + ROLES)),
        status=draw(
            st.sampled_from(ACCEPTED if refundable else ACCEPTED * 2 + CANCEL_STATUSES)
        ),
    )
    facts = CancellationFacts(
        cancellation,
        caused_by_us=not refundable and _rarely(draw),
        tiktok_order=draw(st.one_of(st.just(after), st.none())),
    )
    settings = CancelToRefundConfig(
        restock=draw(st.booleans()), include_seller_cancellations=draw(st.booleans())
    )
    return facts, order, settings


@dataclass(frozen=True)
class MemoCase:
    """Direction A inputs."""

    facts: CreditMemoFacts
    settings: RefundToCancelConfig
    market: str


@st.composite
def memo_cases(draw: st.DrawFn, *, line_cancels: bool = False) -> MemoCase:
    """Direction A facts: a memo within the order's refunded qtys, a TikTok order, settings.

    ``line_cancels`` narrows to what reaches the line-cancel branch: a partial memo of
    items, ``partial_refunds = "cancel_items"``, a US/UK shop, a cancellable order.
    """
    order = draw(
        magento_orders(
            invoicing=draw(st.sampled_from(("full", "full", "partly"))),
            all_refunded=not line_cancels and draw(st.booleans()),
            states=("processing", "complete"),
        )
    )
    refunded = [it for it in order.top_level_items if it.qty_refunded > 0]
    rows = {}
    if refunded:
        for it in draw(st.lists(st.sampled_from(refunded), unique=True, min_size=1)):
            rows[it.item_id] = draw(st.integers(1, int(it.qty_refunded)))
    echo = not line_cancels and _rarely(draw)
    comments = (f"cancelsync: refund {marker('4035000000001')}",) if echo else ()
    memo = make_memo(order, rows, comments=comments)

    statuses = CANCELLABLE if line_cancels else CANCELLABLE * 2 + TIKTOK_STATUSES
    lines = tiktok_lines_for(order)
    if draw(st.booleans()):
        # Only the memo's SKUs still live: line cancels may reach every remaining line.
        memo_skus = {row.sku for row in memo.items}
        cancelled = frozenset(
            ln.line_id for ln in lines if ln.seller_sku not in memo_skus
        )
    else:
        cancelled = frozenset(draw(lists_of([ln.line_id for ln in lines])))
    tiktok = make_tiktok_order(
        order, draw(st.sampled_from(statuses)), cancelled=cancelled
    )
    missing = not line_cancels and _rarely(draw)  # the order is not in this shop
    pending = None
    if draw(st.booleans()):
        pending = make_cancellation(
            status="CANCELLATION_REQUEST_PENDING", cancel_id="4035999"
        )
    created_by_us = not line_cancels and _rarely(draw)
    facts = CreditMemoFacts(
        memo, order, created_by_us, None if missing else tiktok, pending
    )
    partial = ("cancel_items",) if line_cancels else ("report", "cancel_items")
    settings = RefundToCancelConfig(
        enabled=True,
        cancel_reason=draw(st.sampled_from(CONFIGURED_REASONS)),
        partial_refunds=draw(st.sampled_from(partial)),
        approve_buyer_requests=draw(st.booleans()),
    )
    markets: tuple[str, ...] = ("US", "UK", "GB")
    if not line_cancels:
        markets = markets * 3 + tuple(sorted(reasons.MARKETS))
    return MemoCase(facts, settings, draw(st.sampled_from(markets)))
