"""The order center's pages and JSON API: gather, then render.

Data comes through the store and the CLI's own gathering functions (``status_data`` for the
overview, ``commands._order_history`` for an order's timeline, ``actions`` for retry and
resolve), so the web shows exactly what ``status`` and ``explain`` print. Pages are Jinja2
templates with autoescaping on; nothing here checks who is asking (``app`` did).
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, StrictUndefined

from cancelsync.actions import ActionResult, resolve_action, retry_action
from cancelsync.commands import _order_history
from cancelsync.config import Config, StoreConfig
from cancelsync.directions import Direction
from cancelsync.scopes import store_scope
from cancelsync.status import status_data
from cancelsync.store import LedgerEntry, Store
from cancelsync.store.ledger import STATES
from cancelsync.web.auth import Session
from cancelsync.web.http import (
    HTML,
    Request,
    Response,
    json_error,
    json_response,
    local_path,
    path_with_query,
    redirect,
)

PAGE_SIZE = 50
CSV_LIMIT = 10_000
MAX_ORDER_REF = 100
# Cursor streams whose position is a Unix time (the others are ids).
TIME_STREAMS = frozenset({Direction.TIKTOK_TO_MAGENTO.stream})
BY = "order center"


# --------------------------------------------------------------------------- rendering


def _when(value: str | int | None) -> str:
    """A stored ISO time (or Unix seconds) as ``2026-11-01 12:00 UTC``."""
    if value is None or value == "":
        return "-"
    when = (
        datetime.fromtimestamp(value, UTC)
        if isinstance(value, int)
        else datetime.fromisoformat(value)
    )
    if when.utcoffset() is None:
        return str(value)
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def duration(seconds: float | None) -> str:
    """``45 s``, ``12 min``, ``3 h 5 min``, ``2 d 4 h``; ``-`` for none."""
    if seconds is None:
        return "-"
    s = max(0, int(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86_400:
        h, m = divmod(s // 60, 60)
        return f"{h} h {m} min" if m else f"{h} h"
    d, h = divmod(s // 3600, 24)
    return f"{d} d {h} h" if h else f"{d} d"


def direction_label(value: str) -> str:
    try:
        return Direction(value).label
    except ValueError:
        return value


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("cancelsync.web", "templates"),
        autoescape=True,  # every page: hostile SKUs and reasons are text, never markup
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(when=_when, duration=duration, direction=direction_label)
    return env


TEMPLATES = _environment()


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
    """``status_data`` per store, plus how far behind each cursor is and the token's
    remaining life (seconds)."""
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
             "message": ev.message, "details": ev.details}
            for ev in events
        ],
    }  # fmt: skip


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


# --------------------------------------------------------------------------- views


@dataclass
class View:
    """What a view gets: the request, the open store and the site's settings."""

    request: Request
    config: Config
    store: Store
    now: datetime
    links: Links
    session: Session | None = None
    params: dict[str, str] = field(default_factory=dict)

    def page(self, template: str, status: int = 200, **data: Any) -> Response:
        """A page in the layout: the nav counts, the search box, the sign-out form."""
        html = TEMPLATES.get_template(template).render(
            csrf=self.session.csrf if self.session else None,
            flash=self.session.pop_flash() if self.session else None,
            open_count=open_count(self.config, self.store),
            q=self.request.query.get("q", ""),
            path=self.request.path,
            **data,
        )
        return Response(status, html.encode(), HTML)

    def choice(self, key: str, options: list[str]) -> str | None:
        """A query filter: one of ``options``, or ``None`` for "all"; raises on others."""
        value = self.request.query.get(key) or None
        if value is not None and value not in options:
            raise BadRequest(f"{key}: unknown value (one of {', '.join(options)})")
        return value

    def store_names(self) -> list[str]:
        return [s.name for s in self.config.stores]


class BadRequest(Exception):
    """A request the views cannot serve as asked (400), with a message for people."""


def overview_page(v: View) -> Response:
    return v.page("overview.html", stores=overview(v.config, v.store, v.now))


def attention_page(v: View) -> Response:
    store_name = v.choice("store", v.store_names())
    direction = v.choice("direction", [str(d) for d in Direction])
    items = attention(v.config, v.store, v.links, v.now,
                      store_name=store_name, direction=direction)  # fmt: skip
    return v.page("attention.html", items=items, stores=v.store_names(),
                  directions=list(Direction), store_name=store_name,
                  direction=direction)  # fmt: skip


def order_page(v: View) -> Response:
    ref = v.request.query.get("q", "").strip()
    if not ref:
        return v.page("order.html", ref="", data=None)
    if len(ref) > MAX_ORDER_REF:
        raise BadRequest("an order id is at most 100 characters")
    data = order(v.store, ref, v.links, v.now)
    return v.page("order.html", 200 if data else 404, ref=ref, data=data)


def _activity_filter(v: View) -> ActivityFilter:
    try:
        page = max(1, int(v.request.query.get("page", "1")))
    except ValueError:
        raise BadRequest("page: a number") from None
    return ActivityFilter(v.choice("store", v.store_names()),
                          v.choice("state", list(STATES)), page)  # fmt: skip


def activity_page(v: View) -> Response:
    f = _activity_filter(v)
    rows, total = activity(v.config, v.store, f, limit=PAGE_SIZE,
                           offset=(f.page - 1) * PAGE_SIZE)  # fmt: skip
    pages = max(1, math.ceil(total / PAGE_SIZE))
    return v.page(
        "activity.html", rows=[entry_data(e, v.links, v.now) for e in rows],
        total=total, pages=pages, filter=f, stores=v.store_names(), states=STATES,
        prev_url=path_with_query("/activity", **f.query(page=f.page - 1))
        if f.page > 1 else None,
        next_url=path_with_query("/activity", **f.query(page=f.page + 1))
        if f.page < pages else None,
        csv_url=path_with_query("/activity.csv", **f.query(page=None)),
    )  # fmt: skip


def activity_export(v: View) -> Response:
    f = _activity_filter(v)
    rows, _ = activity(v.config, v.store, f, limit=CSV_LIMIT, offset=0)
    stamp = v.now.strftime("%Y%m%d-%H%M%S")
    return Response(
        200, activity_csv(rows).encode("utf-8"), "text/csv; charset=utf-8",
        [("Content-Disposition",
          f'attachment; filename="cancelsync-activity-{stamp}.csv"')],
    )  # fmt: skip


def _action_id(v: View) -> int:
    return int(v.params["action_id"])


def _do(v: View, name: str) -> ActionResult:
    if name == "retry":
        return retry_action(v.store, _action_id(v), v.now, by=BY)
    note = (
        v.request.json.get("note") if v.request.is_api else v.request.form.get("note")
    )
    if note is not None and not isinstance(note, str):
        raise BadRequest("note: a string")
    return resolve_action(v.store, _action_id(v), v.now, note=note, by=BY)


def action_form(name: str) -> Callable[[View], Response]:
    """POST /actions/{id}/retry|resolve from a page: do it, then back to the list."""

    def view(v: View) -> Response:
        result = _do(v, name)
        if v.session is not None:
            v.session.flash = result.message
        return redirect(local_path(v.request.form.get("next"), "/attention"))

    return view


# --------------------------------------------------------------------------- API


def api_stores(v: View) -> Response:
    return json_response({"stores": overview(v.config, v.store, v.now)})


def api_attention(v: View) -> Response:
    store_name = v.choice("store", v.store_names())
    direction = v.choice("direction", [str(d) for d in Direction])
    items = attention(v.config, v.store, v.links, v.now,
                      store_name=store_name, direction=direction)  # fmt: skip
    return json_response({"items": items})


def api_order(v: View) -> Response:
    ref = v.params["order_ref"]
    if len(ref) > MAX_ORDER_REF:
        raise BadRequest("an order id is at most 100 characters")
    data = order(v.store, ref, v.links, v.now)
    if data is None:
        return json_error(404, f"nothing recorded for order {ref}")
    return json_response(data)


def api_action(name: str) -> Callable[[View], Response]:
    """POST /api/actions/{id}/retry|resolve: 200 done, 404 no such action, 409 not open."""

    def view(v: View) -> Response:
        if name == "resolve" and not isinstance(v.request.json, dict):
            raise BadRequest('send a JSON object, e.g. {"note": "refunded by hand"}')
        result = _do(v, name)
        status = {"not_found": 404, "not_open": 409}.get(result.outcome, 200)
        return json_response(result.as_dict(), status)

    return view


# --------------------------------------------------------------------------- routes


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    view: Callable[[View], Response]


def _route(method: str, path: str, view: Callable[[View], Response]) -> Route:
    # {name} matches one path segment; {action_id} only digits.
    regex = re.sub(
        r"\{(\w+)\}",
        lambda m: (
            rf"(?P<{m[1]}>\d{{1,18}})" if m[1] == "action_id" else rf"(?P<{m[1]}>[^/]+)"
        ),
        path,
    )
    return Route(method, re.compile(f"^{regex}$"), view)


ROUTES = (
    _route("GET", "/", overview_page),
    _route("GET", "/attention", attention_page),
    _route("GET", "/order", order_page),
    _route("GET", "/activity", activity_page),
    _route("GET", "/activity.csv", activity_export),
    _route("POST", "/actions/{action_id}/retry", action_form("retry")),
    _route("POST", "/actions/{action_id}/resolve", action_form("resolve")),
    _route("GET", "/api/stores", api_stores),
    _route("GET", "/api/attention", api_attention),
    _route("GET", "/api/orders/{order_ref}", api_order),
    _route("POST", "/api/actions/{action_id}/retry", api_action("retry")),
    _route("POST", "/api/actions/{action_id}/resolve", api_action("resolve")),
)


def match(path: str) -> Iterator[tuple[Route, dict[str, str]]]:
    """Every route whose path matches, with its parameters (any method)."""
    for route in ROUTES:
        m = route.pattern.match(path)
        if m:
            yield route, m.groupdict()
