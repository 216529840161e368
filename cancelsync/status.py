"""``cancelsync status``: gather what is stored per store, then render it.

``status_data`` reads the store into plain data (what ``status --json`` prints as is);
``render_status`` turns that data into the text for people. Anything new for ``status``
is gathered in ``_store_status`` and printed in ``_render_store``.
"""

from __future__ import annotations

from typing import Any, TextIO

from cancelsync.config import Config, StoreConfig
from cancelsync.rules.decisions import Code
from cancelsync.scopes import store_scope, token_scope
from cancelsync.store import LedgerEntry, Store


def status_data(config: Config, store: Store) -> dict[str, Any]:
    """Every configured store's stored state, as JSON-ready data."""
    return {
        "database": str(config.worker.database),
        "stores": [_store_status(store, cfg) for cfg in config.stores],
    }


def _store_status(store: Store, cfg: StoreConfig) -> dict[str, Any]:
    scope = store_scope(store, cfg)
    binding = store.shops.get(cfg.name)
    return {
        "name": cfg.name,
        "enabled": cfg.enabled,
        "scope": scope,
        "tiktok_shop_id": cfg.shop_id or (binding.tiktok_shop_id if binding else None),
        "market": cfg.market or (binding.market if binding else None),
        "directions": {
            "tiktok_cancel_to_magento_refund": cfg.tiktok_cancel_to_magento_refund.enabled,
            "magento_refund_to_tiktok_cancel": cfg.magento_refund_to_tiktok_cancel.enabled,
        },
        "auth": _auth_status(store, cfg),
        "cursors": {c.stream: c.position for c in store.cursors.all(scope)},
        "last_cycle": _last_cycle(store, scope),
        "actions": store.ledger.counts(scope),
        # TikTok cancellations with no Magento order to refund: a wrong
        # tiktok_order_id_field, or orders the importer never brought over.
        "never_imported": store.ledger.reason_code_counts(scope).get(
            Code.NOT_IMPORTED, 0
        ),
        "needs_attention": [
            _entry_brief(e) for e in store.ledger.in_state(scope, "needs_attention")
        ],
        "failed": [_entry_brief(e) for e in store.ledger.in_state(scope, "failed")],
    }


def _auth_status(store: Store, cfg: StoreConfig) -> dict[str, Any]:
    stored = store.tokens.get(token_scope(store, cfg))
    if stored is None:
        return {"status": "seed" if cfg.refresh_token else "not connected"}
    pair = stored[0]
    return {
        "status": pair.auth_status,
        "error": pair.auth_error,
        "access_token_expire_at": pair.access_token_expire_at,
    }


def _last_cycle(store: Store, scope: str) -> dict[str, Any] | None:
    last = store.cycles.last(scope)
    if last is None:
        return None
    return {
        "started_at": last.started_at,
        "finished_at": last.finished_at,
        "outcome": last.outcome,
        "counts": last.counts,
        "error": last.error,
    }


def _entry_brief(entry: LedgerEntry) -> dict[str, Any]:
    return {
        "action_id": entry.action_id,
        "action": entry.action,
        "direction": entry.direction,
        "tiktok_order_id": entry.tiktok_order_id,
        "magento_increment_id": entry.magento_increment_id,
        "reason": entry.reason,
        "last_error": entry.last_error,
        "attempts": entry.attempts,
        "updated_at": entry.updated_at,
    }


# --------------------------------------------------------------------------- rendering


def render_status(data: dict[str, Any], out: TextIO) -> None:
    """The text ``cancelsync status`` prints, from ``status_data``'s result."""
    for s in data["stores"]:
        _render_store(s, out)


def _render_store(s: dict[str, Any], out: TextIO) -> None:
    flag = "" if s["enabled"] else " (disabled)"
    print(
        f"store {s['name']}{flag}  [{s['scope']}]  market={s['market'] or '?'}",
        file=out,
    )
    dirs = s["directions"]
    print(
        f"  tiktok→magento refund: {_on(dirs['tiktok_cancel_to_magento_refund'])}"
        f"   magento→tiktok cancel: {_on(dirs['magento_refund_to_tiktok_cancel'])}",
        file=out,
    )
    auth = s["auth"]
    error = f" ({auth['error']})" if auth.get("error") else ""
    print(f"  auth: {auth['status']}{error}", file=out)
    for stream, pos in s["cursors"].items():
        print(f"  cursor {stream}: {pos}", file=out)
    print(f"  last cycle: {_cycle_text(s['last_cycle'])}", file=out)
    counts = ", ".join(f"{k} {v}" for k, v in s["actions"].items())
    print(f"  actions: {counts}", file=out)
    if s["never_imported"]:
        print(
            f"  never imported: {s['never_imported']} TikTok cancellation(s) found no "
            "Magento order (check magento.tiktok_order_id_field and your importer)",
            file=out,
        )
    for item in s["needs_attention"]:
        print(
            f"  ! #{item['action_id']} {item['action']} tiktok {item['tiktok_order_id']}"
            f" magento {item['magento_increment_id'] or '-'}: {item['reason']}",
            file=out,
        )


def _on(enabled: bool) -> str:
    return "on" if enabled else "off"


def _cycle_text(last: dict[str, Any] | None) -> str:
    if last is None:
        return "never"
    error = f" — {last['error']}" if last["error"] else ""
    return f"{last['finished_at']} {last['outcome']}{error}"
