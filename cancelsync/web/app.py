"""The order center's WSGI application: parse, authenticate, route, add security headers.

Every path but the sign-in page and the stylesheet needs authentication: the bearer token
(``Authorization: Bearer <worker.web_token>``, for scripts) or a session cookie from the
sign-in form (for people). Views run only for their own method (GET views read, POST views
act); a POST authenticated by the cookie must carry the session's CSRF token (the form's
``csrf`` field, or an ``X-CSRF-Token`` header), a bearer POST needs none (a browser never
adds that header by itself). Failed authentications are throttled and logged without the
value tried. Every reply carries a strict Content-Security-Policy (no script at all),
``X-Frame-Options: DENY``, ``Referrer-Policy: no-referrer`` and, but for the stylesheet,
``Cache-Control: no-store``; its body is scrubbed of every configured secret.

``X-Forwarded-Proto`` and ``X-Forwarded-For`` are believed only when the listener is on a
loopback address, i.e. when the only client is the merchant's reverse proxy.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from http.cookies import CookieError, SimpleCookie
from importlib import resources
from typing import Any
from urllib.parse import parse_qsl, quote

import structlog

from cancelsync.clock import Clock
from cancelsync.config import Config
from cancelsync.log import Redactor
from cancelsync.store import Store
from cancelsync.web import views
from cancelsync.web.auth import (
    LOGIN_COOKIE,
    LOGIN_FORM_LIFETIME,
    SESSION_COOKIE,
    Session,
    Sessions,
    Throttle,
    bearer_token,
    new_nonce,
    same_secret,
    token_matches,
)
from cancelsync.web.gather import Links
from cancelsync.web.http import (
    HTML,
    TEXT,
    Request,
    Response,
    json_error,
    local_path,
    redirect,
)

log = structlog.get_logger("cancelsync.web")

MAX_BODY_BYTES = 64 * 1024
CSP = (
    "default-src 'self'; script-src 'none'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = (
    ("Content-Security-Policy", CSP),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Content-Type-Options", "nosniff"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Server", "cancelsync"),  # not wsgiref's "WSGIServer/0.2 CPython/3.x.y"
)
STATIC = {"/static/order-center.css": ("order-center.css", "text/css; charset=utf-8")}
REASONS = {
    200: "OK", 303: "See Other", 400: "Bad Request", 401: "Unauthorized",
    403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
    409: "Conflict", 413: "Content Too Large", 415: "Unsupported Media Type",
    429: "Too Many Requests", 500: "Internal Server Error",
}  # fmt: skip

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class OrderCenter:
    """The WSGI app. One instance per server: its sessions die with it.

    Args:
        store: the order center's own connection (not the worker's), used under a lock.
        trust_proxy: believe ``X-Forwarded-Proto`` / ``-For`` (a loopback listener).
    """

    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        token: str,
        clock: Clock,
        redactor: Redactor,
        trust_proxy: bool = True,
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.redactor = redactor
        self.trust_proxy = trust_proxy
        self.links = Links.from_config(config)
        self.sessions = Sessions(clock)
        self.throttle = Throttle(clock)
        self._token = token
        self._store_lock = threading.Lock()

    # ------------------------------------------------------------------ WSGI

    def __call__(
        self, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        try:
            request = self.parse(environ)
            response = self.handle(request) if isinstance(request, Request) else request
        except Exception:
            log.exception("web.crashed", path=environ.get("PATH_INFO", ""))
            response = Response(500, b"internal error (see the worker's log)\n")
        return self._send(response, start_response)

    def parse(self, environ: dict[str, Any]) -> Request | Response:
        """The request, or the error reply for one that cannot be read."""
        # WSGI hands the path over as latin-1 text of the raw (percent-decoded) bytes.
        raw_path = environ.get("PATH_INFO") or "/"
        path = raw_path.encode("latin-1").decode("utf-8", "replace")
        headers = {
            key[5:].replace("_", "-").lower(): value
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = environ["CONTENT_TYPE"]
        request = Request(
            method=environ.get("REQUEST_METHOD", "GET").upper(),
            path=path,
            query=dict(parse_qsl(environ.get("QUERY_STRING", ""))),
            headers=headers,
            cookies=_cookies(headers.get("cookie", "")),
            client=self._client(environ, headers),
            secure=environ.get("wsgi.url_scheme") == "https"
            or (self.trust_proxy and headers.get("x-forwarded-proto", "") == "https"),
        )
        if request.method == "POST":
            problem = _read_body(environ, request)
            if problem is not None:
                return problem
        return request

    def _client(self, environ: dict[str, Any], headers: dict[str, str]) -> str:
        forwarded = headers.get("x-forwarded-for", "")
        if self.trust_proxy and forwarded:
            # The proxy appends the address it saw: the last one is the one to believe.
            return forwarded.rsplit(",", 1)[-1].strip()
        return str(environ.get("REMOTE_ADDR", ""))

    def _send(self, response: Response, start_response: StartResponse) -> list[bytes]:
        body = response.body
        if body and not response.static:
            body = self.redactor.scrub_text(body.decode("utf-8")).encode("utf-8")
        headers = [
            ("Content-Type", response.content_type),
            ("Content-Length", str(len(body))),
            *SECURITY_HEADERS,
            *response.headers,
        ]
        if not any(k == "Cache-Control" for k, _ in response.headers):
            headers.append(("Cache-Control", "no-store"))
        status = f"{response.status} {REASONS.get(response.status, 'Unknown')}"
        start_response(status, headers)
        return [body]

    # ------------------------------------------------------------------ routing

    def handle(self, req: Request) -> Response:
        if req.path in STATIC:
            return _static(req)
        if req.path == "/favicon.ico":  # browsers ask; there is none
            return Response(404, b"", TEXT, [("Cache-Control", "max-age=86400")])
        if req.path == "/login":
            return self.login(req)
        if req.path == "/logout":
            return self.logout(req)
        by_bearer, session, refusal = self.authenticate(req)
        if refusal is not None:
            return refusal
        found = list(views.match(req.path))
        route = next((r for r in found if r[0].method == req.method), None)
        if route is None:
            if not found:
                return self.error(req, 404, "no such page")
            allowed = ", ".join(sorted({r.method for r, _ in found}))
            reply = self.error(req, 405, f"use {allowed}")
            reply.headers.append(("Allow", allowed))
            return reply
        if req.method == "POST" and not by_bearer:
            assert session is not None  # noqa: S101 - authenticate() gave one
            given = req.form.get("csrf") or req.headers.get("x-csrf-token")
            if not same_secret(given, session.csrf):
                log.warning("web.csrf_refused", path=req.path, client=req.client)
                return self.error(req, 403, "the form is stale: reload the page")
        return self.run_view(req, route[0], route[1], session)

    def run_view(
        self,
        req: Request,
        route: views.Route,
        params: dict[str, str],
        session: Session | None,
    ) -> Response:
        with self._store_lock:
            view = views.View(req, self.config, self.store, self.clock.now(),
                              self.links, session, params)  # fmt: skip
            try:
                response = route.view(view)
            except views.BadRequest as exc:
                return self.error(req, 400, str(exc))
        if req.method == "POST":
            log.info("web.action", path=req.path, status=response.status,
                     client=req.client)  # fmt: skip
        return response

    def error(self, req: Request, status: int, message: str) -> Response:
        if req.is_api:
            return json_error(status, message)
        html = views.TEMPLATES.get_template("error.html").render(
            status=status, message=message
        )
        return Response(status, html.encode(), HTML)

    # ------------------------------------------------------------------ auth

    def authenticate(
        self, req: Request
    ) -> tuple[bool, Session | None, Response | None]:
        """``(by bearer, session, None)``, or a refusal as the third item."""
        bearer = bearer_token(req.headers.get("authorization"))
        if bearer is not None or "authorization" in req.headers:
            wait = self.throttle.wait_seconds(req.client)
            if wait:
                return False, None, self._throttled(req, wait)
            if token_matches(bearer, self._token):
                return True, None, None
            self._failed(req, "bearer")
            return False, None, self._unauthorized(req)
        session = self.sessions.get(req.cookies.get(SESSION_COOKIE))
        if session is not None:
            return False, session, None
        return False, None, self._unauthorized(req)

    def _unauthorized(self, req: Request) -> Response:
        if req.is_api or req.method != "GET":
            reply = self.error(
                req, 401, "sign in: send Authorization: Bearer <web_token>"
            )
            reply.headers.append(("WWW-Authenticate", 'Bearer realm="cancelsync"'))
            return reply
        target = req.path + ("?" + _query(req.query) if req.query else "")
        return redirect("/login?next=" + quote(target, safe=""))

    def _throttled(self, req: Request, wait: int) -> Response:
        reply = self.error(req, 429, f"too many failed sign-ins: try again in {wait} s")
        reply.headers.append(("Retry-After", str(wait)))
        return reply

    def _failed(self, req: Request, how: str) -> None:
        count = self.throttle.failed(req.client)
        # Never the value tried: it may be a real secret typed in the wrong box.
        log.warning("web.signin_failed", how=how, client=req.client,
                    failures_in_window=count)  # fmt: skip

    def login(self, req: Request) -> Response:
        if req.method == "GET":
            return self._login_form(req)
        if req.method != "POST":
            reply = self.error(req, 405, "use GET or POST")
            reply.headers.append(("Allow", "GET, POST"))
            return reply
        nonce = self.sessions.unsign(req.cookies.get(LOGIN_COOKIE))
        if nonce is None or not same_secret(req.form.get("csrf"), nonce):
            return self._login_form(req, "The sign-in form expired: try again.", 403)
        wait = self.throttle.wait_seconds(req.client)
        if wait:
            return self._login_form(
                req, f"Too many failed sign-ins: try again in {wait} s.", 429
            )
        if not token_matches(req.form.get("token"), self._token):
            self._failed(req, "form")
            return self._login_form(req, "That is not the order center's token.", 401)
        cookie, _ = self.sessions.create()
        log.info("web.signed_in", client=req.client)
        reply = redirect(local_path(req.form.get("next")))
        reply.headers.append(("Set-Cookie", self._cookie(
            req, SESSION_COOKIE, cookie, int(self.sessions.lifetime.total_seconds())
        )))  # fmt: skip
        reply.headers.append(("Set-Cookie", self._cookie(req, LOGIN_COOKIE, "", 0)))
        return reply

    def _login_form(
        self, req: Request, problem: str | None = None, status: int = 200
    ) -> Response:
        # One value per browser, not per page: another tab (or the favicon's redirect
        # here) must not make an open sign-in form stale.
        nonce = self.sessions.unsign(req.cookies.get(LOGIN_COOKIE)) or new_nonce()
        html = views.TEMPLATES.get_template("login.html").render(
            csrf=nonce, problem=problem,
            next=local_path(req.query.get("next") or req.form.get("next")),
        )  # fmt: skip
        reply = Response(status, html.encode(), HTML)
        reply.headers.append(("Set-Cookie", self._cookie(
            req, LOGIN_COOKIE, self.sessions.sign(nonce),
            int(LOGIN_FORM_LIFETIME.total_seconds()),
        )))  # fmt: skip
        return reply

    def logout(self, req: Request) -> Response:
        if req.method != "POST":
            reply = self.error(req, 405, "sign out with the button (POST)")
            reply.headers.append(("Allow", "POST"))
            return reply
        cookie = req.cookies.get(SESSION_COOKIE)
        session = self.sessions.get(cookie)
        if session is not None and not same_secret(req.form.get("csrf"), session.csrf):
            return self.error(req, 403, "the form is stale: reload the page")
        self.sessions.drop(cookie)
        reply = redirect("/login")
        reply.headers.append(("Set-Cookie", self._cookie(req, SESSION_COOKIE, "", 0)))
        return reply

    def _cookie(self, req: Request, name: str, value: str, max_age: int) -> str:
        secure = "; Secure" if req.secure else ""
        return (
            f"{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict"
            + secure
        )


# --------------------------------------------------------------------------- helpers


def _cookies(header: str) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except CookieError:
        return {}
    return {k: m.value for k, m in jar.items()}


def _query(query: dict[str, str]) -> str:
    return "&".join(
        f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in query.items()
    )


def _read_body(environ: dict[str, Any], req: Request) -> Response | None:
    """Fill ``req.form`` / ``req.json`` from the body; an error reply when it is unusable."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return Response(400, b"bad Content-Length\n")
    if length > MAX_BODY_BYTES:
        return Response(413, b"request body too large\n")
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    kind = req.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return Response(400, b"the body is not UTF-8\n")
    if kind == "application/x-www-form-urlencoded":
        req.form = dict(parse_qsl(text, keep_blank_values=True))
    elif kind == "application/json":
        try:
            req.json = json.loads(text) if text.strip() else None
        except json.JSONDecodeError:
            return json_error(400, "the body is not JSON")
    elif body:
        return Response(415, b"send a form or JSON\n")
    return None


def _static(req: Request) -> Response:
    if req.method != "GET":
        return Response(405, b"GET only\n", TEXT, [("Allow", "GET")])
    name, content_type = STATIC[req.path]
    data = resources.files("cancelsync.web").joinpath("static", name).read_bytes()
    return Response(200, data, content_type, [("Cache-Control", "max-age=3600")], True)
