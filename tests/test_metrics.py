"""Prometheus /metrics and /healthz (worker.metrics_port), scraped over loopback."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator, MutableMapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from cancelsync.clock import FakeClock
from cancelsync.config import Config, load_config
from cancelsync.log import Redactor
from cancelsync.metrics import Metrics, MetricsServer
from cancelsync.monitor import Monitor
from cancelsync.sandbox.common import Fault
from cancelsync.sandbox.harness import Sandbox
from cancelsync.service import Worker
from cancelsync.store import Store
from cancelsync.sync.engine import CycleReport
from cancelsync.wiring import ClientFactory

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

TWO_STORES = """\
[worker]
poll_interval_seconds = 60

[magento]
base_url = "https://magento.test"
consumer_key = "ck"
consumer_secret = "cs-secret"
access_token = "at-token"
access_token_secret = "ats-secret"

[[stores]]
name = "us-main"
app_key = "key"
app_secret = "app-secret"

[[stores]]
name = "uk-off"
app_key = "key"
app_secret = "app-secret"
enabled = false
"""


def _get(port: int, path: str) -> requests.Response:
    return requests.get(f"http://127.0.0.1:{port}{path}", timeout=5)


def _samples(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    """Both simulators on loopback with the demo store."""
    with Sandbox() as sandbox:
        sandbox.add_store("us-main")
        yield sandbox


@pytest.fixture
def config(tmp_path: Path) -> Config:
    """Two stores, the second one disabled; polls every 60 s."""
    path = tmp_path / "cancelsync.toml"
    path.write_text(TWO_STORES, encoding="utf-8")
    return load_config(path, environ={})


def _report(
    run_id: str, clock: FakeClock, *, error: str | None = None, attention: int = 0
) -> CycleReport:
    report = CycleReport("us-main", "store:us-main", run_id, clock.now())
    report.error = error
    report.new_attention = attention
    report.finished_at = clock.now()
    return report


# --------------------------------------------------------------------------- scraping


def test_scrape_after_a_sandbox_cycle(sb: Sandbox, tmp_path: Path) -> None:
    """After one cycle /metrics shows the store's actions, API calls and errors, cursor
    lag, last success and token expiry, and /healthz answers 200."""
    refunded = sb.place_order([{"sku": "A", "qty": 1, "price": 5.0}])
    held = sb.place_order([{"sku": "B", "qty": 1, "price": 6.0}])
    sb.magento.hold_order(held.magento_entity_id)
    sb.tiktok.buyer_cancel(refunded.tiktok_order_id)
    sb.tiktok.buyer_cancel(held.tiktok_order_id)
    sb.tiktok_faults.next_calls(".*", Fault("status", status=503), count=1)
    sb.tiktok.expire_access_tokens()  # refreshed, and the new pair stored, in the cycle
    config = load_config(sb.write_config(tmp_path / "cancelsync.toml"))
    store = Store.open(config.worker.database)
    clients = ClientFactory(config, store, redactor=Redactor(config.secrets()),
                            retry=_no_wait())  # fmt: skip
    metrics = Metrics(config, store, clock=clients.clock)
    monitor = Monitor(store, clock=clients.clock, metrics=metrics, metrics_port=0)
    worker = Worker(config, store, clients, monitor=monitor)
    try:
        with monitor.serving():
            assert monitor.server is not None
            port = monitor.server.port
            (report,) = worker.run_once()
            scraped = _get(port, "/metrics")
            health = _get(port, "/healthz")
        stored = store.tokens.get(f"seed:{sb.demo.app_key}:" + _seed(config))
    finally:
        clients.close()
        store.close()

    now = datetime.now(UTC).timestamp()
    assert report.error is None
    assert scraped.status_code == 200
    assert scraped.headers["Content-Type"].startswith("text/plain")
    m = _samples(scraped.text)
    actions = {
        state: _value(m, "cancelsync_actions", store="us-main",
                      direction="tiktok_to_magento", state=state)
        for state in ("done", "needs_attention", "failed", "pending", "skipped")
    }  # fmt: skip
    assert actions == {
        "done": 1, "needs_attention": 1, "failed": 0, "pending": 0, "skipped": 0,
    }  # fmt: skip
    assert _value(m, "cancelsync_actions", store="us-main",
                  direction="magento_to_tiktok", state="done") == 0  # fmt: skip
    assert _value(m, "cancelsync_api_requests_total", platform="magento") == len(
        sb.magento_server.journal.entries()
    )
    assert _value(m, "cancelsync_api_requests_total", platform="tiktok") == len(
        sb.tiktok_server.journal.entries()
    )
    assert _value(m, "cancelsync_api_errors_total", platform="tiktok",
                  error="RetryableApiError") == 1  # fmt: skip
    assert _value(m, "cancelsync_api_errors_total", platform="tiktok",
                  error="AuthError") == 1  # fmt: skip
    assert not [k for k in m if k[0] == "cancelsync_api_errors_total"
                and ("platform", "magento") in k[1]]  # fmt: skip
    lag = _value(m, "cancelsync_cursor_lag_seconds", store="us-main",
                 stream="tiktok.cancellations")  # fmt: skip
    assert lag is not None
    assert 0 <= lag < 30
    last_ok = _value(m, "cancelsync_last_success_timestamp_seconds", store="us-main")
    assert last_ok is not None
    assert now - 30 < last_ok <= now
    assert _value(m, "cancelsync_failed_cycles_in_a_row", store="us-main") == 0
    assert _value(m, "cancelsync_store_healthy", store="us-main") == 1
    assert stored is not None
    pair = stored[0]
    assert pair.access_token_expire_at is not None
    assert pair.access_token_expire_at > now
    assert _value(m, "cancelsync_token_expiry_timestamp_seconds", store="us-main",
                  token="access") == pair.access_token_expire_at  # fmt: skip
    assert health.status_code == 200
    assert health.json() == {
        "status": "ok",
        "stores": [{
            "store": "us-main", "healthy": True, "why": None,
            "last_success_at": datetime.fromtimestamp(last_ok, UTC).isoformat(),
            "failed_cycles_in_a_row": 0, "last_error": None,
        }],
    }  # fmt: skip


def _no_wait() -> Any:
    from cancelsync.clients.http import RetryPolicy

    return RetryPolicy(sleep=lambda _: None)


def _seed(config: Config) -> str:
    from cancelsync.store import seed_fingerprint

    (cfg,) = config.stores
    seed = seed_fingerprint(cfg.access_token, cfg.refresh_token)
    assert seed is not None
    return seed


# --------------------------------------------------------------------------- /healthz


def test_healthz_follows_completed_cycles_not_attention(
    config: Config, store: Store, clock: FakeClock
) -> None:
    """503 before any cycle; 200 after one, with attention items and while errors are
    younger than three intervals; 503 naming the store and the error after that; a new
    process reads the same verdict from the database."""
    metrics = Metrics(config, store, clock=clock)
    monitor = Monitor(store, clock=clock, metrics=metrics)
    server = MetricsServer(metrics, 0).start()
    try:
        before = _get(server.port, "/healthz")
        monitor.after_run([_report("r1", clock, attention=3)])
        after_attention = _get(server.port, "/healthz").status_code
        clock.advance(60)
        monitor.after_run(
            [_report("r2", clock, error="tiktok: HTTP 401 token expired")]
        )
        clock.advance(120)
        on_the_limit = _get(server.port, "/healthz").status_code
        clock.advance(1)
        stale = _get(server.port, "/healthz")
        scraped = _samples(_get(server.port, "/metrics").text)
    finally:
        server.stop()

    assert before.status_code == 503
    assert before.json()["stores"][0]["why"] == "no cycle has completed yet"
    assert [s["store"] for s in before.json()["stores"]] == ["us-main"]
    assert (after_attention, on_the_limit) == (200, 200)
    assert stale.status_code == 503
    assert stale.json() == {
        "status": "unhealthy",
        "stores": [{
            "store": "us-main", "healthy": False,
            "why": "no cycle completed for 181 s (limit 180 s); last error: tiktok: "
            "HTTP 401 token expired",
            "last_success_at": "2026-11-01T12:00:00+00:00",
            "failed_cycles_in_a_row": 1, "last_error": "tiktok: HTTP 401 token expired",
        }],
    }  # fmt: skip
    assert _value(scraped, "cancelsync_store_healthy", store="us-main") == 0
    assert _value(scraped, "cancelsync_failed_cycles_in_a_row", store="us-main") == 1
    restarted = Metrics(config, store, clock=clock)
    assert restarted.health()[0] is False
    clock.advance(-100)
    assert restarted.health()[0] is True


def test_healthz_never_shows_a_secret(
    config: Config, store: Store, clock: FakeClock
) -> None:
    """A secret inside the last error is masked in the /healthz body."""
    metrics = Metrics(config, store, clock=clock, redactor=Redactor(["tok-SECRET-1"]))
    Monitor(store, clock=clock, metrics=metrics).after_run(
        [_report("r1", clock, error="refused token tok-SECRET-1")]
    )

    healthy, body = metrics.health()

    assert healthy is False
    assert body["stores"][0]["last_error"] == "refused token ***"
    assert "tok-SECRET-1" not in json.dumps(body)


# --------------------------------------------------------------------------- server


def test_each_worker_has_its_own_registry(
    config: Config, store: Store, clock: FakeClock
) -> None:
    """Two Metrics never share samples, and nothing lands in the global registry."""
    one = Metrics(config, store, clock=clock)
    two = Metrics(config, store, clock=clock)
    one.api_requests.labels("magento").inc()

    assert (
        one.registry.get_sample_value(
            "cancelsync_api_requests_total", {"platform": "magento"}
        )
        == 1
    )
    assert (
        two.registry.get_sample_value(
            "cancelsync_api_requests_total", {"platform": "magento"}
        )
        is None
    )
    assert (
        REGISTRY.get_sample_value(
            "cancelsync_api_requests_total", {"platform": "magento"}
        )
        is None
    )


def test_unknown_paths_are_404(config: Config, store: Store, clock: FakeClock) -> None:
    """Only /metrics and /healthz are served."""
    server = MetricsServer(Metrics(config, store, clock=clock), 0).start()
    try:
        response = _get(server.port, "/")
    finally:
        server.stop()

    assert response.status_code == 404


def test_a_busy_port_is_logged_and_the_sync_goes_on(
    config: Config,
    store: Store,
    clock: FakeClock,
    logs: list[MutableMapping[str, Any]],
) -> None:
    """When the port is taken, serving() logs metrics.unavailable and still yields."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        monitor = Monitor(store, clock=clock, metrics=Metrics(config, store, clock=clock),
                          metrics_port=port)  # fmt: skip
        with monitor.serving():
            served = monitor.server

    assert served is None
    (event,) = [e for e in logs if e["event"] == "metrics.unavailable"]
    assert event["port"] == port
    assert event["log_level"] == "error"


# --------------------------------------------------------------------------- holds


def _ledger_row(
    store: Store, clock: FakeClock, key: str, action: str, state: str
) -> None:
    store.ledger.begin(key, scope="store:us-main", store_name="us-main",
                       direction="tiktok_to_magento", action=action, now=clock.now(),
                       state=state, tiktok_cancel_id=key.rsplit(":", 1)[1])  # fmt: skip


def test_orders_on_hold_counts_cancelsyncs_holds_still_on(
    config: Config, store: Store, clock: FakeClock
) -> None:
    """cancelsync_orders_on_hold{store} counts done holds with no final release (not
    the merchant's own holds), read at start and again after each run."""
    _ledger_row(store, clock, "hold:us:1", "magento_hold", "done")
    _ledger_row(store, clock, "hold:us:2", "magento_hold", "done")
    _ledger_row(store, clock, "hold:us:3", "magento_hold", "skipped")  # not_our_hold
    metrics = Metrics(config, store, clock=clock)
    server = MetricsServer(metrics, 0).start()
    try:
        before = _samples(_get(server.port, "/metrics").text)
        _ledger_row(store, clock, "release:us:1", "magento_unhold", "done")
        Monitor(store, clock=clock, metrics=metrics).after_run([_report("r1", clock)])
        after = _samples(_get(server.port, "/metrics").text)
    finally:
        server.stop()

    assert _value(before, "cancelsync_orders_on_hold", store="us-main") == 2
    assert _value(after, "cancelsync_orders_on_hold", store="us-main") == 1
    assert _value(after, "cancelsync_orders_on_hold", store="uk-off") is None
