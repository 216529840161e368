"""The demo's seeded orders and before/after snapshots of both sides of an order.

Shared by the scripted demo (``sandbox.demo``) and the interactive sandbox
(``sandbox.prompt``).
"""

from __future__ import annotations

from collections.abc import Mapping
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
