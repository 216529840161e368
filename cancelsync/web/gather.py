"""What the order center shows, gathered: the store's data as plain, JSON-ready dicts.

Through the store and the CLI's own gathering functions (``status_data`` for the overview,
``commands._order_history`` for an order's timeline), so the web shows exactly what
``status`` and ``explain`` print. ``views`` renders it.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from cancelsync.commands import _order_history
from cancelsync.config import Config, StoreConfig
from cancelsync.directions import Direction
from cancelsync.plan_text import action_label, row_label
from cancelsync.scopes import store_scope
from cancelsync.status import status_data
from cancelsync.store import LedgerEntry, Store

# Cursor streams whose position is a Unix time (the others are ids).
TIME_STREAMS = frozenset({Direction.TIKTOK_TO_MAGENTO.stream})


# --------------------------------------------------------------------------- links


@dataclass(frozen=True)
class Links:
    """Links to the merchant's Magento admin and TikTok Seller Center (config templates)."""

    magento_template: str | None = None
    tiktok_template: str | None = None

    @classmethod
    def from_config(cls, config: Config) -> Links:
        return cls(
            config.worker.magento_admin_order_url, config.worker.tiktok_order_url
        )

    def magento(self, entity_id: int | None, increment_id: str | None) -> str | None:
        if not self.magento_template or entity_id is None:
            return None
        return _fill(self.magento_template, magento_entity_id=entity_id,
                     magento_increment_id=increment_id or "")  # fmt: skip

    def tiktok(self, tiktok_order_id: str | None, scope: str) -> str | None:
        if not self.tiktok_template or not tiktok_order_id:
            return None
        shop_id = scope.removeprefix("shop:") if scope.startswith("shop:") else ""
        return _fill(
            self.tiktok_template,
            tiktok_order_id=tiktok_order_id,
            tiktok_shop_id=shop_id,
        )


def _fill(template: str, **values: object) -> str:
    # Quoted whole: an id cannot add a path, a query or a scheme to the merchant's URL.
    return template.format_map({k: quote(str(v), safe="") for k, v in values.items()})


# --------------------------------------------------------------------------- gathering


def _age_seconds(stored: str | None, now: datetime) -> int | None:
    if not stored:
        return None
    return int((now - datetime.fromisoformat(stored)).total_seconds())


def overview(config: Config, store: Store, now: datetime) -> list[dict[str, Any]]:
    """``status_data`` per store, plus how far behind each cursor is, the token's
    remaining life and how long each order has been on hold (seconds)."""
    stores: list[dict[str, Any]] = status_data(config, store)["stores"]
    for s in stores:
        s["cursor_lag_seconds"] = {
            stream: max(0, int(now.timestamp()) - pos)
            if stream in TIME_STREAMS
            else None
            for stream, pos in s["cursors"].items()
        }
        for key in ("error", "access_token_expire_at"):
            s["auth"].setdefault(key, None)
        expire = s["auth"]["access_token_expire_at"]
        s["auth"]["expires_in_seconds"] = (
            int(expire - now.timestamp()) if isinstance(expire, int) else None
        )
        for hold in s["on_hold"]:
            hold["age_seconds"] = _age_seconds(hold["held_since"], now)
        last = s["last_cycle"]
        s["last_cycle_age_seconds"] = (
            _age_seconds(last["finished_at"] or last["started_at"], now)
            if last
            else None
        )
    return stores


def entry_data(entry: LedgerEntry, links: Links, now: datetime) -> dict[str, Any]:
    """One ledger row as the pages and the API show it (no payload)."""
    return {
        "action_id": entry.action_id,
        "store_name": entry.store_name,
        "scope": entry.scope,
        "direction": entry.direction,
        "action": entry.action,
        "action_label": row_label(entry.action, entry.state, entry.reason_code),
        "state": entry.state,
        "tiktok_order_id": entry.tiktok_order_id,
        "magento_entity_id": entry.magento_entity_id,
        "magento_increment_id": entry.magento_increment_id,
        "reason": entry.reason,
        "reason_code": entry.reason_code,
        "last_error": entry.last_error,
        "attempts": entry.attempts,
        "remote_id": entry.remote_id,
        "created_at": entry.created_at,
        "updated_at": entry.updated_at,
        "age_seconds": _age_seconds(entry.created_at, now),
        "tiktok_url": links.tiktok(entry.tiktok_order_id, entry.scope),
        "magento_url": links.magento(
            entry.magento_entity_id, entry.magento_increment_id
        ),
    }


def _stores(config: Config, store_name: str | None) -> list[StoreConfig]:
    return [s for s in config.stores if store_name in (None, s.name)]


def attention(
    config: Config,
    store: Store,
    links: Links,
    now: datetime,
    *,
    store_name: str | None = None,
    direction: str | None = None,
) -> list[dict[str, Any]]:
    """Open needs-attention items of the configured stores, oldest first."""
    items = []
    for cfg in _stores(config, store_name):
        for e in store.ledger.in_state(store_scope(store, cfg), "needs_attention"):
            if direction in (None, e.direction):
                items.append({**entry_data(e, links, now), "store_name": cfg.name})
    return sorted(items, key=lambda i: (i["created_at"], i["action_id"]))


def open_count(config: Config, store: Store) -> int:
    return sum(
        store.ledger.counts(store_scope(store, cfg))["needs_attention"]
        for cfg in config.stores
    )


def order(store: Store, ref: str, links: Links, now: datetime) -> dict[str, Any] | None:
    """``explain``'s data for a TikTok order id or Magento increment id, or ``None``."""
    link, entries, events = _order_history(store, ref)
    if link is None and not entries and not events:
        return None
    scope = link.scope if link else (entries[0].scope if entries else "")
    kinds: dict[int | None, str] = {e.action_id: e.action for e in entries}
    return {
        "order_ref": ref,
        "link": None if link is None else {
            "tiktok_order_id": link.tiktok_order_id,
            "magento_entity_id": link.magento_entity_id,
            "magento_increment_id": link.magento_increment_id,
            "tiktok_url": links.tiktok(link.tiktok_order_id, scope),
            "magento_url": links.magento(link.magento_entity_id,
                                         link.magento_increment_id),
        },
        "actions": [entry_data(e, links, now) for e in entries],
        "timeline": [
            {"at": ev.at, "kind": ev.kind, "action_id": ev.action_id,
             "action_label": _event_label(kinds.get(ev.action_id), ev.kind),
             "message": ev.message, "details": ev.details}
            for ev in events
        ],
    }  # fmt: skip


def _event_label(action: str | None, kind: str) -> str | None:
    """The action of a timeline event in words: done for a ``done`` event, else what
    it set out to do; ``None`` for an event of no action."""
    return None if action is None else action_label(action, done=kind == "done")


@dataclass
class ActivityFilter:
    store_name: str | None = None
    state: str | None = None
    page: int = 1

    def query(self, **changes: Any) -> dict[str, Any]:
        values = {"store": self.store_name, "state": self.state, "page": self.page}
        return {**values, **changes}


def activity(
    config: Config, store: Store, f: ActivityFilter, *, limit: int, offset: int
) -> tuple[list[LedgerEntry], int]:
    scopes = (
        [store_scope(store, cfg) for cfg in _stores(config, f.store_name)]
        if f.store_name
        else None
    )
    return store.ledger.page(
        scopes=scopes, states=[f.state] if f.state else None, limit=limit, offset=offset
    )


CSV_COLUMNS = (
    "action_id", "updated_at", "created_at", "store_name", "direction", "action", "state",
    "tiktok_order_id", "magento_increment_id", "magento_entity_id", "attempts",
    "reason_code", "reason", "last_error", "remote_id",
)  # fmt: skip


def activity_csv(rows: list[LedgerEntry]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for e in rows:
        writer.writerow([_cell(getattr(e, c)) for c in CSV_COLUMNS])
    return out.getvalue()


def _cell(value: object) -> str:
    """A CSV cell a spreadsheet shows as text: a leading = + - @ (a formula) is quoted."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
