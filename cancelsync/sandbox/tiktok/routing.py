"""The endpoint table of the TikTok Shop simulator and how a request finds its entry.

Labels double as ``endpoint_name`` values for fault targeting and the journal: a literal
version where the endpoint exists in one version, ``{v}`` where it exists in several.
A path that fits no pattern is 36009009, a known path with another method is 36009010,
and a known path in a version that does not exist is 36009014 (reference §6).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cancelsync.sandbox.common import SimRequest
from cancelsync.sandbox.tiktok import errors as E
from cancelsync.sandbox.tiktok.errors import ApiError

_AUTH = "seller.authorization.info"
_ORDER = "seller.order.info"
_RR = "seller.return_refund.basic"


@dataclass(frozen=True)
class Route:
    """One endpoint: label, path pattern, the versions it exists in, access rules."""

    label: str
    method: str
    pattern: re.Pattern[str]
    versions: frozenset[str]
    kind: str  # "token" (auth host, unsigned) | "global" (no shop_cipher) | "shop"
    scope: str  # the OAuth scope the access token needs

    @property
    def action(self) -> str:
        """The label without its method, e.g. ``/order/{v}/orders``."""
        return self.label.split(" ", 1)[1]


def _route(label: str, versions: str, kind: str, scope: str) -> Route:
    method, path = label.split(" ", 1)
    regex = re.sub(r"/(\{v\}|\d{6})/", "/(?P<v>\\\\d{6})/", path, count=1)
    regex = re.sub(r"\{(cancel_id|order_id)\}", "(?P<id>[^/]+)", regex)
    pattern = re.compile(regex)
    return Route(label, method, pattern, frozenset(versions.split()), kind, scope)


ROUTES = (
    _route("GET /api/v2/token/get", "", "token", ""),
    _route("GET /api/v2/token/refresh", "", "token", ""),
    _route("GET /authorization/202309/shops", "202309", "global", _AUTH),
    _route("POST /order/202309/orders/search", "202309", "shop", _ORDER),
    _route("GET /order/{v}/orders", "202309 202507", "shop", _ORDER),
    _route("POST /return_refund/{v}/cancellations", "202309 202602", "shop", _RR),
    _route(
        "POST /return_refund/{v}/cancellations/search", "202309 202602", "shop", _RR
    ),
    _route(
        "POST /return_refund/202309/cancellations/{cancel_id}/approve",
        "202309",
        "shop",
        _RR,
    ),
    _route(
        "POST /return_refund/202309/cancellations/{cancel_id}/reject",
        "202309",
        "shop",
        _RR,
    ),
    _route("GET /return_refund/202309/reject_reasons", "202309", "shop", _RR),
    _route("PUT /event/202309/webhooks", "202309", "shop", _ORDER),
    _route("GET /event/202309/webhooks", "202309", "shop", _ORDER),
    _route(
        "GET /return_refund/{v}/orders/{order_id}/aftersale_eligibility",
        "202309 202512 202602",
        "shop",
        _RR,
    ),
)


def label_for(request: SimRequest) -> str:
    """The route label of a request, or ``"METHOD /path"`` when none fits."""
    for route in ROUTES:
        if route.method == request.method and route.pattern.fullmatch(request.path):
            return route.label
    return f"{request.method} {request.path}"


def match(request: SimRequest) -> tuple[Route, str, str]:
    """``(route, version, path id)`` of a request; ``ApiError`` when none fits."""
    hits = [(r, m) for r in ROUTES if (m := r.pattern.fullmatch(request.path))]
    if not hits:
        raise ApiError(E.BAD_PATH, f"Invalid path {request.path}", http_status=404)
    for route, found in hits:
        if route.method != request.method:
            continue
        groups = found.groupdict()
        version = groups.get("v") or ""
        if route.kind != "token" and version not in route.versions:
            raise ApiError(E.BAD_VERSION, f"Invalid version {version}", http_status=404)
        return route, version, groups.get("id") or ""
    raise ApiError(
        E.BAD_METHOD, f"Method {request.method} is not allowed", http_status=405
    )
