"""Alerts to worker.alert_webhook_url, against a local receiver on 127.0.0.1.

The receiver answers each POST as scripted (a status, or ``"hang"``: no answer until the
test ends), and keeps every body it was sent.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from cancelsync import alerts
from cancelsync.alerts import Alerter
from cancelsync.cli import main
from cancelsync.clients.alert_webhook import WebhookClient
from cancelsync.clients.http import RetryPolicy
from cancelsync.clock import FakeClock
from cancelsync.config import Config, WorkerConfig, load_config
from cancelsync.log import Redactor
from cancelsync.monitor import Monitor
from cancelsync.sandbox.common import Fault
from cancelsync.sandbox.harness import Sandbox
from cancelsync.service import Worker
from cancelsync.store import Store
from cancelsync.sync.engine import CycleReport
from cancelsync.wiring import ClientFactory

HOOK_PATH = "/hooks/T0KEN-hook-secret-42"
CONFIG_TAIL = """\
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
"""


@dataclass
class Receiver:
    """A webhook on loopback: ``script`` says how to answer each POST, in order."""

    url: str = ""
    script: list[int | str] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def texts(self) -> list[str]:
        return [b["text"] for b in self.bodies]


class _Hook(BaseHTTPRequestHandler):
    receiver: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.receiver.bodies.append(json.loads(body))
        self.receiver.paths.append(self.path)
        answer = self.receiver.script.pop(0) if self.receiver.script else 200
        if answer == "hang":
            self.receiver.release.wait(10)
            return
        assert isinstance(answer, int)
        self.send_response(answer)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A scripted webhook receiver on an ephemeral 127.0.0.1 port."""
    hook = Receiver()
    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), type("Hook", (_Hook,), {"receiver": hook})
    )
    server.daemon_threads = True
    hook.url = f"http://127.0.0.1:{server.server_address[1]}{HOOK_PATH}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield hook
    hook.release.set()
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    """Both simulators on loopback with the demo store."""
    with Sandbox() as sandbox:
        sandbox.add_store("us-main")
        yield sandbox


def _alerter(
    store: Store,
    url: str,
    *,
    clock: Any,
    timeout: float = 2.0,
    sleeps: list[float] | None = None,
    redactor: Redactor | None = None,
) -> Alerter:
    return Alerter(
        store,
        WebhookClient(requests.Session(), url, timeout=timeout),
        redactor=redactor or Redactor(),
        clock=clock,
        sleep=(sleeps if sleeps is not None else []).append,
    )


@dataclass
class _Run:
    """A worker over the sandbox, built like ``cancelsync run`` builds it."""

    config: Config
    store: Store
    clients: ClientFactory
    worker: Worker

    def close(self) -> None:
        self.worker.monitor.close()
        self.clients.close()
        self.store.close()


def _worker(sb: Sandbox, folder: Path, url: str, *, timeout: float = 2.0) -> _Run:
    config = load_config(
        sb.write_config(folder / "cancelsync.toml", alert_webhook_url=url)
    )
    store = Store.open(config.worker.database)
    redactor = Redactor(config.secrets())
    clients = ClientFactory(
        config, store, redactor=redactor, retry=RetryPolicy(sleep=lambda _: None)
    )
    alerter = Alerter(
        store, WebhookClient(requests.Session(), url, timeout=timeout),
        redactor=redactor, clock=clients.clock, sleep=lambda _: None,
    )  # fmt: skip
    monitor = Monitor(store, clock=clients.clock, alerter=alerter)
    return _Run(config, store, clients, Worker(config, store, clients, monitor=monitor))


def _report(name: str, run_id: str, clock: FakeClock, error: str | None) -> CycleReport:
    report = CycleReport(name, f"store:{name}", run_id, clock.now())
    report.error = error
    report.finished_at = clock.now()
    return report


# --------------------------------------------------------------------------- items


def test_new_attention_item_is_alerted_once_with_its_ids(
    sb: Sandbox, tmp_path: Path, receiver: Receiver
) -> None:
    """A held order's item is posted once with store, direction, both ids and the reason;
    later runs, a new process included, post nothing more."""
    held = sb.place_order([{"sku": "A", "qty": 1, "price": 5.0}])
    sb.magento.hold_order(held.magento_entity_id)
    sb.tiktok.buyer_cancel(held.tiktok_order_id)
    config = sb.write_config(
        tmp_path / "cancelsync.toml", alert_webhook_url=receiver.url
    )

    first = main(["--config", str(config), "run", "--once"])
    second = main(["--config", str(config), "run", "--once"])

    assert (first, second) == (1, 0)
    (text,) = receiver.texts()
    lines = text.splitlines()
    assert lines[0] == "cancelsync [us-main]: 1 new item needs attention"
    assert lines[1].startswith(
        f"• TikTok cancellation → Magento refund: TikTok order {held.tiktok_order_id}, "
        f"Magento #{held.magento_increment_id} (action 1) — "
    )
    assert "on hold" in lines[1]
    assert receiver.paths == [HOOK_PATH]
    store = Store.open(tmp_path / "cancelsync.db")
    try:
        assert store.alerts.counts() == {"pending": 0, "sent": 1, "dropped": 0}
    finally:
        store.close()


def test_items_of_one_run_are_batched_per_store(
    store: Store, clock: FakeClock, receiver: Receiver
) -> None:
    """Two queued items of one store make one message; 25 make two (20 lines at most)."""
    alerter = _alerter(store, receiver.url, clock=clock)
    for i in range(25):
        store.alerts.enqueue(f"attention:{i}:r1", store_name="us-main",
                             kind="attention", text=f"• item {i}", now=clock.now())  # fmt: skip

    assert alerter.flush() == 2

    first, second = receiver.texts()
    assert first.splitlines()[0] == "cancelsync [us-main]: 20 new items need attention"
    assert first.splitlines()[1:3] == ["• item 0", "• item 1"]
    assert second.splitlines()[0] == "cancelsync [us-main]: 5 new items need attention"
    assert second.splitlines()[-2] == "• item 24"


def test_secrets_and_the_url_stay_out_of_texts_and_logs(
    store: Store,
    clock: FakeClock,
    receiver: Receiver,
    logs: list[MutableMapping[str, Any]],
) -> None:
    """A secret in a reason is masked in the posted text; the hook's URL is never logged,
    not even when the hook fails."""
    redactor = Redactor(["app-secret-value"])
    receiver.script = [500, 500, 500, 404]
    alerter = Alerter.from_config(
        WorkerConfig(alert_webhook_url=receiver.url),
        store, redactor=redactor, clock=clock,
    )  # fmt: skip
    assert alerter is not None
    alerter._sleep = lambda _: None  # the backoff is checked in the next test
    store.alerts.enqueue("failing:us-main:r1", store_name="us-main", kind="failing",
                         text="token app-secret-value refused", now=clock.now())  # fmt: skip

    alerter.flush()  # 500 x3: kept
    alerter.flush()  # 404: dropped

    assert receiver.texts() == ["token *** refused"] * 4
    assert [e["event"] for e in logs if e["event"].startswith("alert.")] == [
        "alert.retry", "alert.retry", "alert.delivery_failed", "alert.dropped",
    ]  # fmt: skip
    dumped = json.dumps(logs, default=str)
    assert "T0KEN" not in dumped
    assert "hooks" not in dumped
    assert redactor.scrub_text(receiver.url) == "***"
    assert store.alerts.counts() == {"pending": 0, "sent": 0, "dropped": 1}


# --------------------------------------------------------------------------- delivery


def test_a_500_is_retried_with_backoff_then_delivered(
    store: Store, clock: FakeClock, receiver: Receiver
) -> None:
    """500 then 200: the same message is sent twice, after one injected backoff."""
    sleeps: list[float] = []
    receiver.script = [500, 200]
    alerter = _alerter(store, receiver.url, clock=clock, sleeps=sleeps)
    store.alerts.enqueue("recovered:us-main:r1", store_name="us-main",
                         kind="recovered", text="back", now=clock.now())  # fmt: skip

    assert alerter.flush() == 1

    assert receiver.texts() == ["back", "back"]
    assert sleeps == [alerts.BACKOFF_SECONDS]
    assert store.alerts.counts() == {"pending": 0, "sent": 1, "dropped": 0}


def test_a_hanging_hook_costs_one_timeout_and_the_cycle_finishes(
    sb: Sandbox, tmp_path: Path, receiver: Receiver
) -> None:
    """With a hook that never answers, the run still refunds and spends one timeout on
    the hook (one POST, however many messages wait); they are sent once it is back."""
    refunded = sb.place_order([{"sku": "A", "qty": 1, "price": 5.0}])
    held = sb.place_order([{"sku": "B", "qty": 1, "price": 6.0}])
    held_too = sb.place_order([{"sku": "C", "qty": 1, "price": 7.0}])
    sb.magento.hold_order(held.magento_entity_id)
    sb.tiktok.buyer_cancel(refunded.tiktok_order_id)
    sb.tiktok.buyer_cancel(held.tiktok_order_id)
    receiver.script = ["hang", "hang"]
    run = _worker(sb, tmp_path, receiver.url, timeout=0.3)
    try:
        started = time.monotonic()
        (report,) = run.worker.run_once()
        first = time.monotonic() - started
        assert report.new_attention == 1
        assert len(sb.magento.credit_memos(refunded.magento_entity_id)) == 1
        assert len(receiver.bodies) == 1
        assert run.store.alerts.counts()["pending"] == 1

        run.store.alerts.enqueue("recovered:eu-main:r0", store_name="eu-main",
                                 kind="recovered", text="eu-main back", now=sb.clock.now())  # fmt: skip
        sb.magento.hold_order(held_too.magento_entity_id)
        sb.tiktok.buyer_cancel(held_too.tiktok_order_id)
        started = time.monotonic()
        run.worker.run_once()
        second = time.monotonic() - started
        assert len(receiver.bodies) == 2  # one timeout per run: 2 messages wait

        run.worker.run_once()  # the hook answers again
    finally:
        run.close()

    assert first < 0.3 + 1.5
    assert second < 0.3 + 1.5
    items, other = receiver.texts()[2:]
    assert items.startswith("cancelsync [us-main]: 2 new items need attention")
    assert held.tiktok_order_id in items
    assert held_too.tiktok_order_id in items
    assert other == "eu-main back"


def test_round_budget_leaves_the_rest_for_the_next_run(
    store: Store, clock: FakeClock, receiver: Receiver
) -> None:
    """Once a round spent the hook's timeout, no further message starts in that round."""
    now = [0.0]
    alerter = _alerter(store, receiver.url, clock=clock, timeout=1.0)
    alerter._monotonic = lambda: now[0]
    alerter._sleep = lambda seconds: now.__setitem__(0, now[0] + seconds)
    receiver.script = [503, 503, 200, 200]
    for kind in ("failing", "recovered"):
        store.alerts.enqueue(f"{kind}:us-main:r", store_name="us-main", kind=kind,
                             text=kind, now=clock.now())  # fmt: skip

    assert alerter.flush() == 0  # 503, sleep 0.5, 503, the next wait would pass 1.0

    assert receiver.texts() == ["failing", "failing"]
    assert alerter.flush() == 2
    assert receiver.texts()[2:] == ["failing", "recovered"]


# --------------------------------------------------------------------------- stores


def test_failing_three_in_a_row_then_recovery_each_alerted_once_across_restarts(
    store: Store, clock: FakeClock, receiver: Receiver
) -> None:
    """The third failed cycle in a row is alerted with its error, the fourth is not, and
    the first completed one says recovered, even with a new process in between."""

    def monitor() -> Monitor:
        return Monitor(
            store, clock=clock, alerter=_alerter(store, receiver.url, clock=clock)
        )

    for i in range(2):
        monitor().after_run(
            [_report("us-main", f"r{i}", clock, "tiktok: cannot reach")]
        )
    assert receiver.texts() == []
    for i in range(2, 4):
        monitor().after_run([_report("us-main", f"r{i}", clock, "tiktok: HTTP 503")])
    monitor().after_run([_report("us-main", "r4", clock, None)])
    monitor().after_run([_report("us-main", "r5", clock, None)])

    assert receiver.texts() == [
        "cancelsync [us-main]: not syncing — 3 cycles in a row failed. Last error: "
        "tiktok: HTTP 503\nEvents wait until it is fixed (nothing is skipped); "
        "`cancelsync check` names the fix.",
        "cancelsync [us-main]: recovered — a cycle completed again after 4 failed ones.",
    ]
    health = store.health.get("us-main")
    assert health is not None
    assert (health.failed_in_a_row, health.failing_alerted) == (0, False)


def test_a_store_failing_against_the_sandbox_is_alerted(
    sb: Sandbox, tmp_path: Path, receiver: Receiver
) -> None:
    """TikTok answering 503 to everything fails three cycles: one alert naming the store
    and the error; TikTok back: one recovery."""
    run = _worker(sb, tmp_path, receiver.url)
    try:
        sb.tiktok_faults.at_rate(".*", Fault("status", status=503), 1.0)
        errors = [run.worker.run_once()[0].error for _ in range(3)]
        sb.tiktok_faults.clear()
        (ok,) = run.worker.run_once()
    finally:
        run.close()

    assert all(errors)
    assert ok.error is None
    failing, recovered = receiver.texts()
    assert failing.startswith("cancelsync [us-main]: not syncing — 3 cycles in a row")
    assert "tiktok" in failing
    assert "503" in failing
    assert recovered == (
        "cancelsync [us-main]: recovered — a cycle completed again after 3 failed ones."
    )


def test_dry_runs_alert_nothing(
    sb: Sandbox, tmp_path: Path, receiver: Receiver
) -> None:
    """A dry run neither queues nor sends alerts."""
    held = sb.place_order([{"sku": "A", "qty": 1, "price": 5.0}])
    sb.magento.hold_order(held.magento_entity_id)
    sb.tiktok.buyer_cancel(held.tiktok_order_id)
    run = _worker(sb, tmp_path, receiver.url)
    try:
        (report,) = run.worker.run_once(dry_run=True)
        counts = run.store.alerts.counts()
    finally:
        run.close()

    assert report.new_attention == 1
    assert receiver.bodies == []
    assert counts == {"pending": 0, "sent": 0, "dropped": 0}


def test_sent_messages_are_pruned_after_a_month(
    store: Store, clock: FakeClock, receiver: Receiver
) -> None:
    """Sent rows older than KEEP_SENT are forgotten at the next round."""
    alerter = _alerter(store, receiver.url, clock=clock)
    store.alerts.enqueue("recovered:x:r", store_name="x", kind="recovered", text="t",
                         now=clock.now())  # fmt: skip
    alerter.flush()
    clock.advance((alerts.KEEP_SENT + timedelta(seconds=1)).total_seconds())

    alerter.flush()

    assert store.alerts.counts() == {"pending": 0, "sent": 0, "dropped": 0}


# --------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('alert_webhook_url = "hooks.example.com/T0KEN"',
         "worker.alert_webhook_url: must be an http(s) URL (not shown: it holds a token)"),
        ('alert_webhook_url = "ftp://hooks.example.com/T0KEN"',
         "worker.alert_webhook_url: must be an http(s) URL (not shown: it holds a token)"),
        ("metrics_port = 0", "worker.metrics_port: 0 is not a port (1-65535)"),
        ("metrics_port = 65536", "worker.metrics_port: 65536 is not a port (1-65535)"),
        ('metrics_port = "9464"', "worker.metrics_port: expected an integer, got '9464'"),
    ],
    ids=["no-scheme", "ftp", "port-0", "port-too-big", "port-string"],
)  # fmt: skip
def test_check_offline_rejects_bad_alert_and_metrics_keys(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    line: str,
    expected: str,
    clean_env: pytest.MonkeyPatch,
) -> None:
    """check --offline exits 2 naming the key, and never prints the webhook URL."""
    path = tmp_path / "cancelsync.toml"
    path.write_text(f"[worker]\n{line}\n{CONFIG_TAIL}", encoding="utf-8")

    rc = main(["--config", str(path), "check", "--offline"])

    out, err = capsys.readouterr()
    assert rc == 2
    assert expected in out + err
    assert "T0KEN" not in out + err


def test_good_alert_and_metrics_keys_load(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    """Valid values load, and the webhook URL is one of the secrets the logs redact."""
    path = tmp_path / "cancelsync.toml"
    url = "https://hooks.example.com/services/T0KEN"
    path.write_text(
        f'[worker]\nmetrics_port = 9464\nalert_webhook_url = "{url}"\n{CONFIG_TAIL}',
        encoding="utf-8",
    )

    config = load_config(path, environ={})

    assert (config.worker.metrics_port, config.worker.alert_webhook_url) == (9464, url)
    assert url in config.secrets()
