"""``cancelsync status``: gather what is stored per store, then render it.

``status_data`` reads the store into plain data (what ``status --json`` prints as is:
epochs stay epochs, with ISO strings beside them); ``render_status`` turns that data into
the text for people: times as ISO UTC with "x minutes ago", Magento orders as
``#<increment id>``, and the auth state and the market said in words. Anything new for
``status`` is gathered in ``_store_status`` and printed in ``_render_store``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TextIO

from cancelsync.clock import SystemClock
from cancelsync.config import Config, StoreConfig
from cancelsync.directions import Direction
from cancelsync.readable import iso_utc, magento_order, when
from cancelsync.scopes import store_scope, token_scope
from cancelsync.store import LedgerEntry, Store
from cancelsync.store.ledger import RESOLVED_CODE

# Cursor streams whose position is a TikTok update_time (Unix seconds); the others hold
# ids. "tiktok.cancelled_orders" is direction B's cross-check (``CROSS_CHECK_STREAM``).
TIME_STREAMS = frozenset(
    {Direction.TIKTOK_TO_MAGENTO.stream, "tiktok.cancelled_orders"}
)
CONNECT = "cancelsync connect --store {name} --auth-code CODE"


def status_data(config: Config, store: Store) -> dict[str, Any]:
    """Every configured store's stored state, as JSON-ready data."""
    return {
        "database": str(config.worker.database),
        "stores": [_store_status(store, cfg) for cfg in config.stores],
    }


def _store_status(store: Store, cfg: StoreConfig) -> dict[str, Any]:
    scope = store_scope(store, cfg)
    binding = store.shops.get(cfg.name)
    cursors = {c.stream: c.position for c in store.cursors.all(scope)}
    bound_market = binding.market if binding else None
    return {
        "name": cfg.name,
        "enabled": cfg.enabled,
        "scope": scope,
        "tiktok_shop_id": cfg.shop_id or (binding.tiktok_shop_id if binding else None),
        "market": cfg.market or bound_market,
        # config | shop (the bound TikTok shop's region) | None: learned on the first run
        "market_source": "config" if cfg.market else ("shop" if bound_market else None),
        "directions": {
            "tiktok_cancel_to_magento_refund": cfg.tiktok_cancel_to_magento_refund.enabled,
            "magento_refund_to_tiktok_cancel": cfg.magento_refund_to_tiktok_cancel.enabled,
        },
        "auth": _auth_status(store, cfg),
        # What TikTok's webhooks said of the authorization (types 6/7), until connect.
        "tiktok_notices": [
            {
                "type": n.kind,
                "message": n.message,
                "received_at": n.received_at,
                "times": n.times,
            }
            for n in store.notices.for_store(cfg.name)
        ],
        "cursors": cursors,
        "cursor_times": {
            stream: iso_utc(pos)
            for stream, pos in cursors.items()
            if stream in TIME_STREAMS
        },
        "last_cycle": _last_cycle(store, scope),
        "actions": store.ledger.counts(scope),
        # Of the done ones, those a person closed with `resolve` (not synced by us).
        "resolved_by_hand": store.ledger.reason_code_counts(scope, "done").get(
            RESOLVED_CODE, 0
        ),
        # TikTok cancellations with no Magento order to refund: a wrong
        # tiktok_order_id_field, or orders the importer never brought over.
        "never_imported": store.ledger.never_imported(scope),
        "hold_on_request": cfg.tiktok_cancel_to_magento_refund.hold_on_request,
        # Magento orders cancelsync holds while a buyer's cancel request is pending.
        "on_hold": [_hold_brief(e) for e in store.ledger.holds_on(scope)],
        "needs_attention": [
            _entry_brief(e) for e in store.ledger.in_state(scope, "needs_attention")
        ],
        "failed": [_entry_brief(e) for e in store.ledger.in_state(scope, "failed")],
    }


def _auth_status(store: Store, cfg: StoreConfig) -> dict[str, Any]:
    stored = store.tokens.get(token_scope(store, cfg))
    if stored is None:
        if not cfg.refresh_token:
            return {"status": "not connected"}
        return {"status": "seed", "access_token_in_config": bool(cfg.access_token)}
    pair = stored[0]
    return {
        "status": pair.auth_status,
        "error": pair.auth_error,
        "access_token_expire_at": pair.access_token_expire_at,
        "access_token_expire_at_iso": iso_utc(pair.access_token_expire_at),
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


def _hold_brief(entry: LedgerEntry) -> dict[str, Any]:
    """One order cancelsync holds: ``held_since`` is when the hold was confirmed."""
    return {
        "action_id": entry.action_id,
        "tiktok_order_id": entry.tiktok_order_id,
        "tiktok_cancel_id": entry.tiktok_cancel_id,
        "magento_entity_id": entry.magento_entity_id,
        "magento_increment_id": entry.magento_increment_id,
        "held_since": entry.updated_at,
        "held_since_iso": iso_utc(entry.updated_at),
    }


# --------------------------------------------------------------------------- rendering


def render_status(
    data: dict[str, Any], out: TextIO, *, now: datetime | None = None
) -> None:
    """The text ``cancelsync status`` prints, from ``status_data``'s result; times are
    told relative to ``now`` (the wall clock unless given)."""
    now = now or SystemClock().now()
    for s in data["stores"]:
        _render_store(s, out, now)


def _render_store(s: dict[str, Any], out: TextIO, now: datetime) -> None:
    flag = "" if s["enabled"] else " (disabled)"
    print(f"store {s['name']}{flag}  [{s['scope']}]", file=out)
    print(f"  market: {_market_text(s)}", file=out)
    dirs = s["directions"]
    print(
        f"  tiktok→magento refund: {_on(dirs['tiktok_cancel_to_magento_refund'])}"
        f"   magento→tiktok cancel: {_on(dirs['magento_refund_to_tiktok_cancel'])}",
        file=out,
    )
    print(f"  auth: {_auth_text(s, now)}", file=out)
    for notice in s.get("tiktok_notices", ()):
        again = f", {notice['times']} times" if notice["times"] > 1 else ""
        print(f"  ! {notice['message']} (received {when(notice['received_at'], now)}"
              f"{again})", file=out)  # fmt: skip
    for stream, pos in s["cursors"].items():
        print(f"  cursor {stream}: {_cursor_text(stream, pos, now)}", file=out)
    print(f"  last cycle: {_cycle_text(s['last_cycle'], now)}", file=out)
    by_hand = s.get("resolved_by_hand", 0)
    counts = ", ".join(
        f"{k} {v}"
        + (f" ({by_hand} resolved by hand)" if k == "done" and by_hand else "")
        for k, v in s["actions"].items()
    )
    print(f"  actions: {counts}", file=out)
    if s["never_imported"]:
        print(
            f"  never imported: {s['never_imported']} TikTok cancellation(s) found no "
            "Magento order (check magento.tiktok_order_id_field and your importer; each "
            "is looked up again every cycle for worker.import_wait_hours after it was "
            "seen, then by `cancelsync resync ORDER`)",
            file=out,
        )
    if s["hold_on_request"] or s["on_hold"]:
        _render_holds(s, out, now)
    for item in s["needs_attention"]:
        print(
            f"  ! {_item_text(item)}: {item['reason']} "
            f"(since {when(item['updated_at'], now)})",
            file=out,
        )
    for item in s["failed"]:
        print(
            f"  failed {_item_text(item)}: {item['last_error'] or '-'} (last try "
            f"{when(item['updated_at'], now)}; tried again automatically)",
            file=out,
        )


def _render_holds(s: dict[str, Any], out: TextIO, now: datetime) -> None:
    holds = s["on_hold"]
    off = "" if s["hold_on_request"] else " (hold_on_request is off: no new holds)"
    if not holds:
        print(f"  on hold by cancelsync: none{off}", file=out)
        return
    print(
        f"  on hold by cancelsync: {len(holds)} order(s) waiting for the buyer's "
        f"request to be answered{off}",
        file=out,
    )
    for hold in holds:
        print(
            f"    Magento {magento_order(hold['magento_increment_id'])} (TikTok order "
            f"{hold['tiktok_order_id'] or '-'}) since {when(hold['held_since'], now)}",
            file=out,
        )


def _on(enabled: bool) -> str:
    return "on" if enabled else "off"


def _market_text(s: dict[str, Any]) -> str:
    if not s["market"]:
        return (
            "learned on the first run (the TikTok shop's region); set market in the "
            "store's config to fix it now"
        )
    source = {"config": " (set in the config)", "shop": " (the TikTok shop's region)"}
    return f"{s['market']}{source.get(s.get('market_source') or '', '')}"


def _auth_text(s: dict[str, Any], now: datetime) -> str:
    """The token state in words, with what to do when something is needed."""
    auth = s["auth"]
    status = auth["status"]
    connect = CONNECT.format(name=s["name"])
    if status == "not connected":
        return (
            f"not connected — run `{connect}` (or set access_token and refresh_token "
            "in the store's config)"
        )
    if status == "seed":
        if not auth.get("access_token_in_config"):
            return (
                "not yet used — the refresh token from the config will be exchanged "
                "for an access token on the first run"
            )
        if s["last_cycle"] is None:
            return (
                "not yet used — the tokens from the config are used on the first run; "
                "the refresh token is exchanged when TikTok says the access token expired"
            )
        return (
            "the tokens from the config, not rotated yet — the refresh token is "
            "exchanged when TikTok says the access token expired"
        )
    if status == "reauthorize":
        error = f" ({auth['error']})" if auth.get("error") else ""
        return (
            f"reauthorize{error} — TikTok refused the refresh token: the seller must "
            f"authorize the app again in TikTok Shop, then run `{connect}`"
        )
    error = f" ({auth['error']})" if auth.get("error") else ""
    expire = auth.get("access_token_expire_at")
    if expire is None:
        return f"{status}{error}"
    if expire <= now.timestamp():
        return (
            f"{status}{error} — access token expired {when(expire, now)}; the next run "
            "refreshes it"
        )
    return f"{status}{error} — access token valid until {when(expire, now)}"


def _cursor_text(stream: str, position: int, now: datetime) -> str:
    if stream in TIME_STREAMS:
        return f"read up to {when(position, now)}"
    if stream == Direction.MAGENTO_TO_TIKTOK.stream:
        return f"read up to credit memo {position}"
    return str(position)


def _cycle_text(last: dict[str, Any] | None, now: datetime) -> str:
    if last is None:
        return "never"
    error = f" — {last['error']}" if last["error"] else ""
    at = when(last["finished_at"] or last["started_at"], now)
    return f"{at} {last['outcome']}{error}"


def _item_text(item: dict[str, Any]) -> str:
    """``#<action id> <action> tiktok <order id> magento #<increment id>``."""
    return (
        f"#{item['action_id']} {item['action']} tiktok {item['tiktok_order_id'] or '-'}"
        f" magento {magento_order(item['magento_increment_id'])}"
    )
