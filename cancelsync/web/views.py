"""The order center's pages and JSON API: the views and their routes.

Each view gathers (``gather``), acts (``actions``: retry and resolve, as the CLI does) and
renders: Jinja2 templates with autoescaping on, or JSON. Nothing here checks who is asking
(``app`` did).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from cancelsync.actions import ActionResult, resolve_action, retry_action
from cancelsync.config import Config
from cancelsync.directions import Direction
from cancelsync.store import Store
from cancelsync.store.ledger import STATES
from cancelsync.web.auth import Session
from cancelsync.web.gather import (
    ActivityFilter,
    Links,
    activity,
    activity_csv,
    attention,
    entry_data,
    open_count,
    order,
    overview,
)
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
