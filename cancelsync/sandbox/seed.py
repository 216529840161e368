"""The demo's seeded orders, the sandbox's scenarios, and snapshots of both sides of an order.

Shared by the scripted demo (``sandbox.demo``) and ``cancelsync sandbox``
(``sandbox.prompt``). A scenario (``SCENARIOS``) is what has already happened when the
sandbox comes up, so that ``run --once``, ``status`` and ``explain`` have something to
show even when nobody is at the prompt.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cancelsync.sandbox.harness import PlacedOrder, Sandbox

Line = Mapping[str, Any]

# (key, what the order is, its lines). The keys name the demo's scenarios.
SEED_ORDERS: tuple[tuple[str, str, tuple[Line, ...]], ...] = (
    ("buyer", "1 x tee (simple product)",
     ({"sku": "TEE-RED-M", "qty": 1, "price": 19.99, "name": "Classic Tee Red M"},)),
    ("system", "2 x hoodie (configurable product)",
     ({"sku": "HOODIE-BLK-L", "qty": 2, "price": 45.00, "product_type": "configurable",
       "name": "Zip Hoodie Black L"},)),
    ("line", "2 x mug + 1 x cap (configurable), two lines",
     ({"sku": "MUG-WHT", "qty": 2, "price": 8.50, "name": "Ceramic Mug White"},
      {"sku": "CAP-NVY", "qty": 1, "price": 12.00, "product_type": "configurable",
       "name": "Baseball Cap Navy"})),
    ("memo", "3 x socks (multi-qty line)",
     ({"sku": "SOCKS-3PK", "qty": 3, "price": 5.00, "name": "Socks 3-pack"},)),
    ("shipped", "1 x tote bag",
     ({"sku": "TOTE-CNV", "qty": 1, "price": 25.00, "name": "Canvas Tote"},)),
    ("quiet", "1 x beanie + 1 x mug",
     ({"sku": "BEANIE-GRY", "qty": 1, "price": 15.00, "name": "Beanie Grey"},
      {"sku": "MUG-WHT", "qty": 1, "price": 8.50, "name": "Ceramic Mug White"})),
)  # fmt: skip


@dataclass
class DemoOrder:
    """One seeded order: a TikTok order imported into Magento."""

    key: str
    title: str
    lines: tuple[Line, ...]
    placed: PlacedOrder

    @property
    def skus(self) -> list[str]:
        return list(dict.fromkeys(str(line["sku"]) for line in self.lines))


def seed_orders(sb: Sandbox) -> list[DemoOrder]:
    """Place the demo orders on TikTok and import them into Magento (invoiced)."""
    return [
        DemoOrder(key, title, lines, sb.place_order(lines))
        for key, title, lines in SEED_ORDERS
    ]


# --------------------------------------------------------------------------- scenarios

BACKLOG_ORDERS = 120


@dataclass(frozen=True)
class Scenario:
    """A story ``cancelsync sandbox --scenario NAME`` sets up before it serves."""

    name: str
    summary: str  # one line for ``--scenario list``
    expect: str  # what the first ``run --once`` should do
    # Makes the events happen (it may place more orders into the list); returns the
    # order worth an ``explain`` (None: nothing has happened to any).
    play: Callable[[Sandbox, list[DemoOrder]], DemoOrder | None]


def _by_key(orders: Sequence[DemoOrder], key: str) -> DemoOrder:
    return next(o for o in orders if o.key == key)


def _play_none(sb: Sandbox, orders: list[DemoOrder]) -> DemoOrder | None:
    return None


def _play_buyer_cancel(sb: Sandbox, orders: list[DemoOrder]) -> DemoOrder:
    tee, hoodie, line = (_by_key(orders, k) for k in ("buyer", "system", "line"))
    sb.tiktok.buyer_cancel(tee.placed.tiktok_order_id)
    sb.tiktok.buyer_cancel(hoodie.placed.tiktok_order_id)
    cap_lines = [
        item["id"]
        for item in sb.tiktok.order(line.placed.tiktok_order_id)["line_items"]
        if item["seller_sku"] == "CAP-NVY"
    ]
    sb.tiktok.buyer_cancel(line.placed.tiktok_order_id, line_ids=cap_lines)
    return tee


def _play_partial_refund(sb: Sandbox, orders: list[DemoOrder]) -> DemoOrder:
    line = _by_key(orders, "line")
    sb.magento.create_credit_memo(
        line.placed.magento_entity_id,
        {"MUG-WHT": 2},
        shipping_amount=0,
        comment="merchant refunded the mugs only",
    )
    return line


def _play_shipped(sb: Sandbox, orders: list[DemoOrder]) -> DemoOrder:
    shipped = _by_key(orders, "shipped")
    sb.tiktok.ship(shipped.placed.tiktok_order_id)
    sb.magento.ship_order(shipped.placed.magento_entity_id)
    sb.magento.create_credit_memo(
        shipped.placed.magento_entity_id,
        None,
        comment="merchant refunded after shipping",
    )
    return shipped


def _play_backlog(sb: Sandbox, orders: list[DemoOrder]) -> DemoOrder:
    start = len(orders)
    for n in range(1, BACKLOG_ORDERS + 1):
        sku = f"BACKLOG-{n % 7 + 1}"
        lines: tuple[Line, ...] = ({"sku": sku, "qty": 1, "price": 9.0 + n % 5},)
        order = DemoOrder(f"backlog-{n}", f"1 x {sku}", lines, sb.place_order(lines))
        sb.tiktok.buyer_cancel(order.placed.tiktok_order_id)
        orders.append(order)
    return orders[start]


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "buyer-cancel",
            "buyers cancelled two orders and one line on TikTok (the default in the "
            "background)",
            "3 Magento credit memos: 2 whole orders and the cap line",
            _play_buyer_cancel,
        ),
        Scenario(
            "partial-refund",
            "the merchant refunded part of an order in Magento (the mugs, not the cap)",
            "no write; the partial credit memo needs attention "
            '(partial_refunds = "report"), so it exits 1',
            _play_partial_refund,
        ),
        Scenario(
            "shipped",
            "the merchant refunded a shipped order in Magento; TikTok cannot cancel it",
            "no write; the TikTok cancel needs attention (the order is IN_TRANSIT), "
            "so it exits 1",
            _play_shipped,
        ),
        Scenario(
            "backlog",
            f"buyers cancelled {BACKLOG_ORDERS} more orders on TikTok (paging, speed)",
            f"{BACKLOG_ORDERS} Magento credit memos",
            _play_backlog,
        ),
        Scenario(
            "none",
            "nothing has happened yet: you play buyer and merchant at the prompt "
            "(its default)",
            "nothing to do until you make something happen",
            _play_none,
        ),
    )
}
DEFAULT_SCENARIO = "buyer-cancel"
INTERACTIVE_SCENARIO = "none"


def scenario_list() -> str:
    """One line per scenario, for ``--scenario list``."""
    width = max(len(name) for name in SCENARIOS)
    return "\n".join(f"  {s.name:<{width}}  {s.summary}" for s in SCENARIOS.values())


# --------------------------------------------------------------------------- snapshots


@dataclass(frozen=True)
class Memo:
    increment_id: str
    grand_total: float
    subtotal: float
    shipping: float
    by_cancelsync: bool
    skus: tuple[tuple[str, float], ...]

    def describe(self, currency: str) -> str:
        items = ", ".join(f"{qty:g} x {sku}" for sku, qty in self.skus)
        who = "by cancelsync" if self.by_cancelsync else "by the merchant"
        return (
            f"#{self.increment_id} {_money(self.grand_total, currency)} "
            f"({items}; shipping {_money(self.shipping, currency)}) {who}"
        )


@dataclass(frozen=True)
class Snapshot:
    """Both sides of one order at one moment."""

    tiktok_status: str
    tiktok_cancels: tuple[str, ...]
    magento_state: str
    currency: str
    memos: tuple[Memo, ...]
    stock: dict[str, float]


def snapshot(sb: Sandbox, order: DemoOrder) -> Snapshot:
    tiktok = sb.tiktok.order(order.placed.tiktok_order_id)
    cancels = tuple(
        _describe_cancel(c)
        for c in sb.tiktok.cancellations(order.placed.tiktok_order_id)
    )
    magento = sb.magento.order(order.placed.magento_entity_id)
    memos = tuple(
        Memo(
            increment_id=str(m["increment_id"]),
            grand_total=float(m["grand_total"]),
            subtotal=float(m.get("subtotal", 0.0)),
            shipping=float(m.get("shipping_amount", 0.0)),
            by_cancelsync=any(
                "[cancelsync:" in str(c.get("comment", "")) for c in m["comments"]
            ),
            # Configurable children repeat their parent's row without a total.
            skus=tuple(
                (str(i["sku"]), float(i["qty"]))
                for i in m["items"]
                if i.get("row_total") is not None and float(i["qty"]) > 0
            ),
        )
        for m in sb.magento.credit_memos(order.placed.magento_entity_id)
    )
    return Snapshot(
        tiktok_status=str(tiktok["status"]),
        tiktok_cancels=cancels,
        magento_state=str(magento["state"]),
        currency=str(magento.get("order_currency_code") or "USD"),
        memos=memos,
        stock={sku: sb.magento.stock(sku) for sku in order.skus},
    )


def _describe_cancel(record: Mapping[str, Any]) -> str:
    role = str(record.get("role", "?")).lower()
    status = str(record.get("cancel_status", "")).removeprefix("CANCELLATION_REQUEST_")
    amount = record.get("refund_amount") or {}
    lines = record.get("cancel_line_items") or []
    skus = ", ".join(sorted({str(li.get("seller_sku")) for li in lines}))
    return (
        f"{role} cancel {status.lower()}: {len(lines)} unit(s) of {skus}, "
        f"{amount.get('refund_total', '?')} {amount.get('currency', '')} to the buyer"
    ).rstrip()


def _money(value: float, currency: str) -> str:
    return f"{value:.2f} {currency}"
