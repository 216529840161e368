"""TikTok Shop webhooks: verified deliveries that wake a store's cycle early.

A webhook carries **no authority**: it only says "look now". The woken cycle re-reads
TikTok as the poll would, so a forged, replayed or lost delivery costs at most one extra
poll, and the poll stays the safety net (TikTok itself says deliveries can be lost).

Every delivery is checked before anything else happens (reference §7):

- the body is at most ``MAX_BODY_BYTES`` (413 otherwise, unread);
- ``Authorization`` is the lowercase hex HMAC-SHA256, keyed with the app secret, of
  ``app_key + raw body``, compared in constant time against every configured app (a shop's
  own app first) — 401 otherwise;
- a repeated ``tts_notification_id`` (TikTok redelivers at about 2 min, 30 min, 3 h, 12 h)
  is answered 200 and dropped.

Types 1 (order status change) and 11 (cancellation status change) wake the stores of the
delivery's shop; types 6 (seller deauthorization) and 7 (authorization expiring) are
handed to ``on_authorization`` so ``status`` and alerts can show them. The answer is
always fast: the work happens in the woken cycle, never in the request.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import structlog

from cancelsync.clients.tiktok.signing import verify_webhook

log = structlog.get_logger("cancelsync.webhooks")

PATH = "/tiktok/webhook"
MAX_BODY_BYTES = 64 * 1024  # TikTok's envelopes are small; anything larger is not one
SEEN_CAPACITY = 10_000  # notification ids remembered for de-duplication
WAKE_TYPES = frozenset({1, 11})  # ORDER_STATUS_CHANGE, CANCELLATION_STATUS_CHANGE
AUTHORIZATION_TYPES = frozenset({6, 7})  # SELLER_DEAUTHORIZATION, expiring soon


@dataclass(frozen=True)
class WebhookApp:
    """One configured store as a webhook can reach it."""

    store_name: str
    tiktok_shop_id: str | None  # None until the store's shop is known
    app_key: str
    app_secret: str


@dataclass(frozen=True)
class Verdict:
    """What to answer, and what to do after answering."""

    status: int
    message: str
    wake: tuple[str, ...] = ()  # store names whose cycle should run now
    authorization: tuple[str, ...] = ()  # store names told of (de)authorization
    notification_type: int | None = None
    data: Mapping[str, Any] = field(default_factory=dict)


class SeenIds:
    """A bounded, thread-safe memory of notification ids (oldest forgotten first)."""

    def __init__(self, capacity: int = SEEN_CAPACITY) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()

    def first_time(self, notification_id: str) -> bool:
        """Remember the id; False when it was seen before."""
        with self._lock:
            if notification_id in self._ids:
                self._ids.move_to_end(notification_id)
                return False
            self._ids[notification_id] = None
            while len(self._ids) > self._capacity:
                self._ids.popitem(last=False)
            return True


def judge(
    raw_body: bytes,
    authorization: str,
    apps: Iterable[WebhookApp],
    seen: SeenIds,
) -> Verdict:
    """Verify and classify one delivery (pure but for ``seen``)."""
    apps = list(apps)
    try:
        envelope = json.loads(raw_body)
    except ValueError:
        envelope = None
    shop_id = str(envelope.get("shop_id", "")) if isinstance(envelope, dict) else ""
    # The shop's own stores first; any configured app may have signed it.
    ordered = sorted(apps, key=lambda a: a.tiktok_shop_id != shop_id)
    signer = next(
        (
            a
            for a in ordered
            if authorization
            and verify_webhook(a.app_key, a.app_secret, raw_body, authorization)
        ),
        None,
    )
    if signer is None:
        return Verdict(HTTPStatus.UNAUTHORIZED, "signature does not match any app")
    if not isinstance(envelope, dict):
        return Verdict(HTTPStatus.BAD_REQUEST, "body is not a JSON object")
    notification_id = str(envelope.get("tts_notification_id") or "")
    kind = envelope.get("type")
    raw_data = envelope.get("data")
    data: dict[str, Any] = raw_data if isinstance(raw_data, dict) else {}
    if notification_id and not seen.first_time(notification_id):
        return Verdict(HTTPStatus.OK, "duplicate delivery", notification_type=kind)
    stores = tuple(
        a.store_name
        for a in apps
        if a.app_key == signer.app_key and a.tiktok_shop_id in (shop_id, None)
    )
    if kind in WAKE_TYPES:
        return Verdict(
            HTTPStatus.OK, "woken", wake=stores, notification_type=kind, data=data
        )
    if kind in AUTHORIZATION_TYPES:
        return Verdict(
            HTTPStatus.OK, "authorization", authorization=stores,
            notification_type=kind, data=data,
        )  # fmt: skip
    return Verdict(HTTPStatus.OK, "ignored", notification_type=kind)


class WebhookServer:
    """``POST /tiktok/webhook`` on ``host:port``, in daemon threads.

    Args:
        apps: called per delivery, so shop bindings learned after start-up count.
        on_wake: called with a store name for each store to wake (must not block).
        on_authorization: called with ``(store name, type, data)`` for types 6 and 7.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        apps: Callable[[], Iterable[WebhookApp]],
        on_wake: Callable[[str], None],
        on_authorization: Callable[[str, int, Mapping[str, Any]], None] = (
            lambda store, kind, data: None
        ),
    ) -> None:
        self.seen = SeenIds()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "cancelsync"
            sys_version = ""

            def do_POST(self) -> None:
                outer._post(self)

            def log_message(self, format: str, *args: Any) -> None:
                return  # one structured line per delivery instead

        self._apps = apps
        self._on_wake = on_wake
        self._on_authorization = on_authorization
        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="cancelsync-webhooks", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> WebhookServer:
        self._thread.start()
        log.info("webhooks.listening", path=PATH, port=self.port)
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _post(self, request: BaseHTTPRequestHandler) -> None:
        if request.path.split("?", 1)[0] != PATH:
            _answer(request, HTTPStatus.NOT_FOUND, "not found")
            return
        try:
            length = int(request.headers.get("Content-Length") or "-1")
        except ValueError:
            length = -1
        if length < 0:
            _answer(request, HTTPStatus.LENGTH_REQUIRED, "Content-Length required")
            return
        if length > MAX_BODY_BYTES:
            _answer(request, HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "body too large")
            return
        body = request.rfile.read(length)
        verdict = judge(
            body, request.headers.get("Authorization") or "", self._apps(), self.seen
        )
        _answer(request, verdict.status, verdict.message)
        log.info(
            "webhooks.delivery", status=int(verdict.status), outcome=verdict.message,
            type=verdict.notification_type, wake=list(verdict.wake),
        )  # fmt: skip
        for store in verdict.wake:
            self._on_wake(store)
        for store in verdict.authorization:
            assert verdict.notification_type is not None  # noqa: S101 - set with it
            self._on_authorization(store, verdict.notification_type, verdict.data)


def _answer(request: BaseHTTPRequestHandler, status: int, message: str) -> None:
    body = json.dumps({"code": 0 if status == HTTPStatus.OK else status,
                       "message": message}).encode()  # fmt: skip
    request.send_response(status)
    request.send_header("Content-Type", "application/json")
    request.send_header("Content-Length", str(len(body)))
    request.end_headers()
    request.wfile.write(body)


class Waker:
    """Debounced wake-ups: any number of wakes while a cycle runs make one more cycle.

    ``wake`` never blocks; ``wait`` blocks the scheduler loop until a wake arrives (or
    the timeout passes) and returns the stores to run, all at once.
    """

    def __init__(self) -> None:
        self._pending: set[str] = set()
        self._cond = threading.Condition()

    def wake(self, store_name: str) -> None:
        with self._cond:
            self._pending.add(store_name)
            self._cond.notify_all()

    def take(self) -> set[str]:
        """The stores woken since the last call (without waiting)."""
        with self._cond:
            woken, self._pending = self._pending, set()
            return woken

    def wait(self, timeout: float) -> set[str]:
        """Wait up to ``timeout`` seconds for a wake; the woken stores (maybe none)."""
        with self._cond:
            if not self._pending:
                self._cond.wait(timeout)
            woken, self._pending = self._pending, set()
            return woken
