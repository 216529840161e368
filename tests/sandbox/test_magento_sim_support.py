"""Helpers for the Magento simulator tests: direct ``handle()`` calls, criteria.

Requests are built by hand from reference §3/§5 (no cancelsync client involved) and go
through ``parse_request`` exactly as the HTTP front would build them. This module holds
no tests; pytest collects it only because of its name.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from cancelsync.clock import FakeClock
from cancelsync.sandbox.common import parse_request
from cancelsync.sandbox.magento import MagentoCredentials, MagentoSimulator

CREDS = MagentoCredentials()
ADMIN = {"authorization": f"Bearer {CREDS.admin_token}"}

# (field, value, condition_type); value None leaves the value key out.
FilterSpec = tuple[str, str | None, str]


def call(
    sim: MagentoSimulator,
    method: str,
    path: str,
    body: Any = None,
    *,
    query: Sequence[tuple[str, str]] = (),
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
) -> tuple[int, Any]:
    """One request straight into ``sim.handle()`` as admin; returns (status, JSON)."""
    target = f"{path}?{urlencode(list(query))}" if query else path
    hdrs = {"host": "magento.test", **ADMIN, **(headers or {})}
    data = b""
    if raw is not None:
        data = raw
        hdrs.setdefault("content-type", "application/json")
    elif body is not None:
        data = json.dumps(body).encode()
        hdrs["content-type"] = "application/json"
    resp = sim.handle(parse_request(method, target, hdrs, data))
    return resp.status, json.loads(resp.body)


def criteria(
    *groups: Sequence[FilterSpec],
    sort: Sequence[tuple[str, str | None]] = (),
    page_size: int | None = None,
    current_page: int | None = None,
) -> list[tuple[str, str]]:
    """Query pairs for ``searchCriteria`` in the documented snake_case spelling."""
    query: list[tuple[str, str]] = []
    for g, filters in enumerate(groups):
        for f, (field, value, condition) in enumerate(filters):
            prefix = f"searchCriteria[filter_groups][{g}][filters][{f}]"
            query.append((f"{prefix}[field]", field))
            if value is not None:
                query.append((f"{prefix}[value]", value))
            query.append((f"{prefix}[condition_type]", condition))
    for i, (field, direction) in enumerate(sort):
        query.append((f"searchCriteria[sortOrders][{i}][field]", field))
        if direction is not None:
            query.append((f"searchCriteria[sortOrders][{i}][direction]", direction))
    if page_size is not None:
        query.append(("searchCriteria[pageSize]", str(page_size)))
    if current_page is not None:
        query.append(("searchCriteria[currentPage]", str(current_page)))
    return query


def new_sim(**kwargs: Any) -> MagentoSimulator:
    """A simulator on a fake clock (2026-11-01 12:00 UTC)."""
    return MagentoSimulator(clock=kwargs.pop("clock", FakeClock()), **kwargs)


def simple_order(
    sim: MagentoSimulator, tiktok_id: str = "576001", *, shipping: float = 5.0
) -> int:
    """Two lines: SKU A (2 x 10.00) and SKU B (1 x 25.50), plus shipping."""
    lines = [
        {"sku": "A", "qty": 2, "price": 10.0, "name": "Alpha"},
        {"sku": "B", "qty": 1, "price": 25.5, "name": "Beta"},
    ]
    return sim.import_tiktok_order(tiktok_id, lines, shipping_amount=shipping)


def configurable_order(
    sim: MagentoSimulator, tiktok_id: str = "576002", *, shipping: float = 5.0
) -> int:
    """One configurable line TEE-RED-M (2 x 20.00) plus a simple SKU S (1 x 5.00)."""
    lines = [
        {"sku": "TEE-RED-M", "qty": 2, "price": 20.0, "product_type": "configurable"},
        {"sku": "S", "qty": 1, "price": 5.0},
    ]
    return sim.import_tiktok_order(tiktok_id, lines, shipping_amount=shipping)


def item_ids(sim: MagentoSimulator, order_id: int) -> dict[str, int]:
    """``item_id`` by role: the SKU for simple rows, ``"<sku>:parent"``/``":child"``."""
    out: dict[str, int] = {}
    for item in sim.order(order_id)["items"]:
        if item["product_type"] == "configurable":
            out[f"{item['sku']}:parent"] = item["item_id"]
        elif "parent_item_id" in item:
            out[f"{item['sku']}:child"] = item["item_id"]
        else:
            out[item["sku"]] = item["item_id"]
    return out
