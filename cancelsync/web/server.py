"""Serving the order center: a threaded ``wsgiref`` server in a daemon thread.

``serving(config, ...)`` is what the service wraps around its loop: nothing when
``worker.web_listen`` is unset; otherwise the order center on that address, with its own
database connection, until the block ends. A port that cannot be bound is logged and the
sync runs anyway.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import structlog

from cancelsync.clock import Clock
from cancelsync.config import Config
from cancelsync.config.model import is_loopback, split_listen
from cancelsync.log import Redactor
from cancelsync.store import Store
from cancelsync.web.app import OrderCenter

log = structlog.get_logger("cancelsync.web")


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(WSGIRequestHandler):
    timeout = 30  # a client that stops sending mid-request frees its thread
    server_version = "cancelsync"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("web.request", line=format % args)


class WebServer:
    """The order center on ``host:port`` (port 0: any free one) until ``stop()``."""

    def __init__(self, app: OrderCenter, host: str, port: int) -> None:
        server_class = _Server6 if ":" in host else _Server
        self.app = app
        self._server = make_server(
            host, port, app, server_class=server_class, handler_class=_Handler
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="cancelsync-web", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}/"

    def start(self) -> WebServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def start_order_center(
    config: Config, *, clock: Clock, redactor: Redactor, listen: str | None = None
) -> WebServer:
    """Open the order center's own store connection and serve it on ``listen`` (default
    ``worker.web_listen``). Raises OSError when the address cannot be bound."""
    address = listen or config.worker.web_listen
    token = config.worker.web_token
    if not address or not token:
        raise ValueError(
            "the order center needs worker.web_listen and worker.web_token"
        )
    host, port = split_listen(address)
    loopback = is_loopback(host)
    store = Store.open(config.worker.database)
    try:
        app = OrderCenter(config, store, token=token, clock=clock, redactor=redactor,
                          trust_proxy=loopback)  # fmt: skip
        server = WebServer(app, host, port).start()
    except BaseException:
        store.close()
        raise
    log.info("web.listening", url=server.url)
    if not loopback:
        log.warning(
            "web.not_loopback", listen=address,
            hint="serve it behind an HTTPS reverse proxy on 127.0.0.1 instead: "
            "over plain HTTP the token and the session cookie cross the network",
        )  # fmt: skip
    return server


@contextmanager
def serving(
    config: Config, *, clock: Clock, redactor: Redactor
) -> Iterator[WebServer | None]:
    """The order center while inside, when ``worker.web_listen`` is set."""
    if not config.worker.web_listen:
        yield None
        return
    try:
        server = start_order_center(config, clock=clock, redactor=redactor)
    except OSError as exc:
        log.error("web.unavailable", listen=config.worker.web_listen, error=str(exc))  # noqa: TRY400 - a busy port needs no traceback
        yield None
        return
    try:
        yield server
    finally:
        server.stop()
        server.app.store.close()
