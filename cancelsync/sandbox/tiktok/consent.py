"""The simulator's seller consent page: where a seller authorizes an app (reference §3).

At TikTok the merchant opens ``services.tiktokshop.com/open/authorize?service_id=…&state=…``,
authorizes the app for their shop, and TikTok redirects to the app's redirect URL with
``code`` (and ``state``); the app then exchanges the code at ``/api/v2/token/get``.
The sandbox has no login and no redirect URL registered, so ``GET /open/authorize``
authorizes at once: with ``redirect_uri`` (loopback only) it redirects there with
``code`` and ``state``; without one it shows the code and the ``cancelsync connect``
line to paste it into. Each visit issues a new code: single use, valid 30 minutes
(``world.AUTH_CODE_TTL``).
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from urllib.parse import urlencode, urlsplit

from cancelsync.sandbox.common import SimRequest, SimResponse

CONSENT_PATH = "/open/authorize"
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def consent_page(
    request: SimRequest,
    apps: Sequence[str],
    issue_code: Callable[[str], str],
) -> SimResponse:
    """Answer ``GET /open/authorize`` with a fresh code for ``app_key`` (or the only app).

    ``service_id`` is accepted as another name for ``app_key`` (the real page takes the
    service id); ``issue_code(app_key)`` issues a code for the shops the app may use.
    """
    query = request.query_dict()
    app_key = query.get("app_key") or query.get("service_id") or ""
    if not app_key and len(apps) == 1:
        app_key = apps[0]
    if app_key not in apps:
        return _html(400, "Unknown app", f"<p>No app {html.escape(app_key)!s} here. "
                     f"Known: {html.escape(', '.join(apps))}.</p>")  # fmt: skip
    code = issue_code(app_key)
    state = query.get("state", "")
    redirect = query.get("redirect_uri", "")
    if redirect:
        target = urlsplit(redirect)
        if target.scheme != "http" or target.hostname not in _LOOPBACK:
            return _html(400, "Refused redirect",
                         "<p>The sandbox redirects to http://127.0.0.1 or localhost "
                         "only.</p>")  # fmt: skip
        joiner = "&" if target.query else "?"
        location = f"{redirect}{joiner}{urlencode({'code': code, 'state': state})}"
        return SimResponse(302, b"", {"Location": location})
    body = (
        f"<p>You authorized app <code>{html.escape(app_key)}</code>. TikTok would now "
        "redirect to the app with this authorization code (single use, valid 30 "
        "minutes):</p>"
        f"<pre id='code'>{html.escape(code)}</pre>"
        "<p>Exchange it with:</p>"
        "<pre>cancelsync --config YOUR.toml connect --store STORE --auth-code "
        f"{html.escape(code)}</pre>"
        "<p>Reload for another code.</p>"
    )
    return _html(200, "Sandbox: seller authorization", body)


def _html(status: int, title: str, body: str) -> SimResponse:
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
        f"</head><body><h1>{title}</h1>{body}</body></html>"
    )
    return SimResponse(
        status, page.encode("utf-8"), {"Content-Type": "text/html; charset=utf-8"}
    )
