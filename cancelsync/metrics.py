"""Prometheus metrics and ``/healthz`` for the service (``worker.metrics_port``).

Each ``Worker`` has its own ``Metrics`` (its own ``CollectorRegistry``, never the global
default), updated in the worker's thread: API calls as they are sent (the transport's
``observe_requests`` hook), everything read from the database after each run. The HTTP
server (``MetricsServer``, 127.0.0.1 only) reads memory only, never SQLite, so a scrape
can neither block nor race a cycle.

Metrics (labels in braces):

- ``cancelsync_actions{store,direction,state}``: ledger actions by state (``done``,
  ``skipped``, ``failed``, ``pending``, ``needs_attention``), as of the store's last cycle;
- ``cancelsync_api_requests_total{platform}``, ``cancelsync_api_errors_total{platform,error}``:
  HTTP attempts (each retry counts) to ``magento``, ``tiktok`` and ``alert_webhook``, and those
  that failed by error class (``RetryableApiError``, ``AuthError``, ...);
- ``cancelsync_cursor_lag_seconds{store,stream}``: now minus the position of a time cursor
  (``tiktok.cancellations``), computed at scrape time;
  ``cancelsync_cursor_position{store,stream}``: every cursor's position (Unix seconds, or
  the Magento credit memo ``entity_id`` of the keyset cursor ``magento.creditmemos``, for
  which a lag has no meaning);
- ``cancelsync_last_success_timestamp_seconds{store}``: when a cycle last completed;
  ``cancelsync_failed_cycles_in_a_row{store}``;
- ``cancelsync_token_expiry_timestamp_seconds{store,token}``: the TikTok ``access`` and
  ``refresh`` tokens' expiry;
- ``cancelsync_orders_on_hold{store}``: Magento orders cancelsync holds while a buyer's
  cancellation request is pending (``hold_on_request``), as of the store's last cycle;
- ``cancelsync_store_healthy{store}``: 1 or 0, the ``/healthz`` verdict per store.

**/healthz** answers 200 while every enabled store completed a cycle (no store-wide error)
within ``HEALTHY_INTERVALS`` poll intervals, 503 otherwise, with a JSON body naming each
store, whether it is healthy and why not. Items needing attention are business, not ill
health: they never make it 503.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import structlog
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
)

from cancelsync.clients.http import RequestOutcome
from cancelsync.clock import Clock
from cancelsync.config import Config, StoreConfig
from cancelsync.directions import Direction
from cancelsync.log import Redactor
from cancelsync.scopes import store_scope, token_scope
from cancelsync.store import Store
from cancelsync.store.alerts import StoreHealthRow
from cancelsync.store.ledger import STATES
from cancelsync.sync.engine import CycleReport

log = structlog.get_logger("cancelsync.metrics")

# A store is healthy while a cycle of it completed within this many poll intervals.
HEALTHY_INTERVALS = 3
LISTEN_HOST = "127.0.0.1"
# Cursors whose position is a time (Unix seconds): their lag is now - position.
TIME_STREAMS = frozenset({Direction.TIKTOK_TO_MAGENTO.stream})


@dataclass
class _StoreState:
    """What ``/healthz`` knows of one store (memory only)."""

    last_ok_at: datetime | None = None
    failed_in_a_row: int = 0
    last_error: str | None = None


class Metrics:
    """One worker's registry, its metrics and its health verdict."""

    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        clock: Clock,
        redactor: Redactor | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.redactor = redactor or Redactor()
        self.registry = CollectorRegistry()
        r = self.registry
        self.actions = Gauge(
            "cancelsync_actions", "Ledger actions by store, direction and state.",
            ["store", "direction", "state"], registry=r,
        )  # fmt: skip
        self.api_requests = Counter(
            "cancelsync_api_requests", "HTTP attempts sent, by platform.",
            ["platform"], registry=r,
        )  # fmt: skip
        self.api_errors = Counter(
            "cancelsync_api_errors", "HTTP attempts that failed, by platform and error.",
            ["platform", "error"], registry=r,
        )  # fmt: skip
        self.cursor_lag = Gauge(
            "cancelsync_cursor_lag_seconds",
            "Now minus a time cursor's position, per store and stream.",
            ["store", "stream"], registry=r,
        )  # fmt: skip
        self.cursor_position = Gauge(
            "cancelsync_cursor_position",
            "A cursor's position (Unix seconds, or a Magento entity_id for a keyset).",
            ["store", "stream"], registry=r,
        )  # fmt: skip
        self.last_success = Gauge(
            "cancelsync_last_success_timestamp_seconds",
            "When a cycle of the store last completed (no store-wide error).",
            ["store"], registry=r,
        )  # fmt: skip
        self.failed_in_a_row = Gauge(
            "cancelsync_failed_cycles_in_a_row",
            "The store's cycles that failed in a row (0 after a completed one).",
            ["store"], registry=r,
        )  # fmt: skip
        self.token_expiry = Gauge(
            "cancelsync_token_expiry_timestamp_seconds",
            "When the store's TikTok access / refresh token expires.",
            ["store", "token"], registry=r,
        )  # fmt: skip
        self.orders_on_hold = Gauge(
            "cancelsync_orders_on_hold",
            "Magento orders cancelsync holds while the buyer's cancel request is pending.",
            ["store"], registry=r,
        )  # fmt: skip
        self.healthy = Gauge(
            "cancelsync_store_healthy", "1 while the store is healthy (see /healthz).",
            ["store"], registry=r,
        )  # fmt: skip
        self._lock = threading.Lock()
        self._stores: dict[str, _StoreState] = {}
        for cfg in self.enabled_stores():
            self._stores[cfg.name] = _StoreState()
            self.healthy.labels(cfg.name).set_function(self._healthy_fn(cfg.name))
            self._note_health(cfg.name, store.health.get(cfg.name))
            self._read_store(cfg, store_scope(store, cfg))

    def enabled_stores(self) -> list[StoreConfig]:
        return [s for s in self.config.stores if s.enabled]

    # ------------------------------------------------------------------ updates

    def observe_request(self, outcome: RequestOutcome) -> None:
        """The transport's observer: one HTTP attempt (any thread)."""
        self.api_requests.labels(outcome.platform).inc()
        if outcome.error is not None:
            self.api_errors.labels(outcome.platform, outcome.error).inc()

    def after_run(
        self, reports: Sequence[CycleReport], health: dict[str, StoreHealthRow]
    ) -> None:
        """Refresh what the run's stores show, from the database (worker thread)."""
        for report in reports:
            self._note_health(report.store_name, health.get(report.store_name))
            cfg = next(
                (s for s in self.config.stores if s.name == report.store_name), None
            )
            if cfg is not None:
                self._read_store(cfg, report.scope)

    def _note_health(self, name: str, row: StoreHealthRow | None) -> None:
        if row is None:
            return
        last_ok_at = datetime.fromisoformat(row.last_ok_at) if row.last_ok_at else None
        with self._lock:
            self._stores[name] = _StoreState(
                last_ok_at, row.failed_in_a_row, row.last_error
            )
        if last_ok_at is not None:
            self.last_success.labels(name).set(last_ok_at.timestamp())
        self.failed_in_a_row.labels(name).set(row.failed_in_a_row)

    def _read_store(self, cfg: StoreConfig, scope: str) -> None:
        name = cfg.name
        counts = self.store.ledger.counts_by_direction(scope)
        for direction in Direction:
            for state in STATES:
                self.actions.labels(name, str(direction), state).set(
                    counts.get((str(direction), state), 0)
                )
        self.orders_on_hold.labels(name).set(len(self.store.ledger.holds_on(scope)))
        for cursor in self.store.cursors.all(scope):
            self.cursor_position.labels(name, cursor.stream).set(cursor.position)
            if cursor.stream in TIME_STREAMS:
                self.cursor_lag.labels(name, cursor.stream).set_function(
                    self._lag_fn(cursor.position)
                )
        stored = self.store.tokens.get(token_scope(self.store, cfg))
        if stored is not None:
            pair = stored[0]
            for token, expire_at in (
                ("access", pair.access_token_expire_at),
                ("refresh", pair.refresh_token_expire_at),
            ):
                if expire_at is not None:
                    self.token_expiry.labels(name, token).set(expire_at)

    def _lag_fn(self, position: int) -> Callable[[], float]:
        """The lag of a time cursor at ``position``, as of the scrape."""
        return lambda: max(0.0, self.clock.now().timestamp() - position)

    # ------------------------------------------------------------------ health

    def _healthy_fn(self, name: str) -> Callable[[], float]:
        return lambda: float(self._verdict(name)[0])

    def health(self) -> tuple[bool, dict[str, Any]]:
        """``(healthy, body)``: every enabled store completed a cycle recently."""
        stores = []
        for cfg in self.enabled_stores():
            ok, why, state = self._verdict(cfg.name)
            stores.append({
                "store": cfg.name,
                "healthy": ok,
                "why": why,
                "last_success_at": (
                    state.last_ok_at.isoformat(timespec="seconds")
                    if state.last_ok_at else None
                ),
                "failed_cycles_in_a_row": state.failed_in_a_row,
                "last_error": (
                    self.redactor.scrub_text(state.last_error)
                    if state.last_error else None
                ),
            })  # fmt: skip
        healthy = all(s["healthy"] for s in stores)
        return healthy, {"status": "ok" if healthy else "unhealthy", "stores": stores}

    def _verdict(self, name: str) -> tuple[bool, str | None, _StoreState]:
        with self._lock:
            state = self._stores.get(name) or _StoreState()
        limit = HEALTHY_INTERVALS * self.config.worker.poll_interval_seconds
        error = (
            f"; last error: {self.redactor.scrub_text(state.last_error)}"
            if state.last_error else ""
        )  # fmt: skip
        if state.last_ok_at is None:
            return False, f"no cycle has completed yet{error}", state
        age = (self.clock.now() - state.last_ok_at).total_seconds()
        if age > limit:
            why = f"no cycle completed for {age:.0f} s (limit {limit} s){error}"
            return False, why, state
        return True, None, state


class MetricsServer:
    """``/metrics`` and ``/healthz`` on 127.0.0.1 in a daemon thread; ``port`` 0 picks one."""

    def __init__(self, metrics: Metrics, port: int, host: str = LISTEN_HOST) -> None:
        handler = type("Handler", (_Handler,), {"metrics": metrics})
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="cancelsync-metrics", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> MetricsServer:
        self._thread.start()
        log.info("metrics.listening", host=LISTEN_HOST, port=self.port)
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class _Handler(BaseHTTPRequestHandler):
    metrics: Metrics

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._reply(
                200, CONTENT_TYPE_LATEST, generate_latest(self.metrics.registry)
            )
        elif path == "/healthz":
            healthy, body = self.metrics.health()
            self._reply(
                200 if healthy else 503, "application/json",
                json.dumps(body, sort_keys=True).encode(),
            )  # fmt: skip
        else:
            self._reply(
                404, "text/plain; charset=utf-8", b"not found: /metrics, /healthz\n"
            )

    def _reply(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not logged (one every few seconds would drown the journal)."""
