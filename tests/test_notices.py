"""Webhook types 6/7 (authorization revoked / expiring): kept for `status`, alerted once a
day, cleared by `connect`. Delivered over HTTP to a running worker's listener."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
from test_alerts import Receiver, receiver  # noqa: F401 - the receiver fixture

from cancelsync.alerts import Alerter
from cancelsync.cli import main
from cancelsync.clients.alert_webhook import WebhookClient
from cancelsync.clients.http import RetryPolicy
from cancelsync.clients.tiktok.signing import webhook_signature
from cancelsync.config import load_config
from cancelsync.log import Redactor
from cancelsync.monitor import Monitor
from cancelsync.sandbox.common import free_port, wait_until
from cancelsync.sandbox.harness import Sandbox
from cancelsync.service import Worker
from cancelsync.store import Store
from cancelsync.webhooks import PATH
from cancelsync.wiring import ClientFactory


def _deliver(sb: Sandbox, port: int, kind: int, notification_id: str) -> int:
    demo = sb.demo
    body = json.dumps({"type": kind, "tts_notification_id": notification_id,
                       "shop_id": demo.shop_id, "timestamp": int(time.time()),
                       "data": {}}).encode()  # fmt: skip
    answer = requests.post(
        f"http://127.0.0.1:{port}{PATH}", data=body, timeout=5,
        headers={"Authorization": webhook_signature(demo.app_key, demo.app_secret, body)},
    )  # fmt: skip
    return answer.status_code


def _record_threads(store: Store) -> set[str]:
    """The names of the threads that use ``store``'s connection from now on."""
    names: set[str] = set()
    for method in ("execute", "query"):
        real = getattr(store.db, method)

        def spy(*args: Any, _real: Any = real, **kw: Any) -> Any:
            names.add(threading.current_thread().name)
            return _real(*args, **kw)

        setattr(store.db, method, spy)
    return names


def test_a_revoked_authorization_is_kept_for_status_alerted_once_and_cleared_by_connect(
    tmp_path: Path,
    receiver: Receiver,  # noqa: F811 - the fixture
) -> None:
    port = free_port()
    with Sandbox() as sb:
        sb.add_store("us-main")
        path = sb.write_config(tmp_path / "cancelsync.toml", alert_webhook_url=receiver.url,
                               webhook_listen=f"127.0.0.1:{port}")  # fmt: skip
        config = load_config(path)
        store = Store.open(config.worker.database)
        redactor = Redactor(config.secrets())
        clients = ClientFactory(config, store, redactor=redactor,
                                retry=RetryPolicy(sleep=lambda _: None))  # fmt: skip
        alerter = Alerter(store, WebhookClient(requests.Session(), receiver.url, timeout=2),
                          redactor=redactor, clock=clients.clock, sleep=lambda _: None)  # fmt: skip
        worker = Worker(config, store, clients,
                        monitor=Monitor(store, clock=clients.clock, alerter=alerter))  # fmt: skip
        # The worker's connection belongs to its cycle thread: the test reads through
        # a connection of its own (WAL), never the worker's from another thread.
        reader = Store.open(config.worker.database)
        threads = _record_threads(store)
        try:
            with worker._webhooks():
                assert _wait(lambda: _deliver(sb, port, 6, "n-1") == 200)
                assert _wait(lambda: bool(reader.notices.for_store("us-main")))
                assert _wait(lambda: any("revoked" in t for t in receiver.texts()))
                assert _deliver(sb, port, 6, "n-2") == 200  # the same day again
                assert _wait(
                    lambda: (
                        [n.times for n in reader.notices.for_store("us-main")] == [2]
                    )
                )
        finally:
            reader.close()
            worker.monitor.close()
            clients.close()
            store.close()
        # Deliveries were answered on HTTP request threads; the worker's connection was
        # used only by this thread (start-up) and the wake runner's cycles.
        assert threads
        assert threads <= {threading.main_thread().name, "cancelsync-wake"}, threads
        (notice,) = Store.open(config.worker.database).notices.for_store("us-main")
        assert notice.kind == 6
        assert "connect --store us-main" in notice.message
        alerted = [t for t in receiver.texts() if "revoked" in t]
        assert len(alerted) == 1
        assert alerted[0].startswith(
            "cancelsync [us-main]: TikTok says the seller revoked"
        )

        out = io.StringIO()
        assert main(["--config", str(path), "status"], stdout=out) == 0
        (line,) = [x for x in out.getvalue().splitlines() if "revoked" in x]
        assert line.startswith(
            "  ! TikTok says the seller revoked the app's authorization"
        )
        assert line.endswith("ago), 2 times)")

        code = sb.auth_code()
        assert main(["--config", str(path), "connect", "--store", "us-main",
                     "--auth-code", code]) == 0  # fmt: skip

        assert Store.open(config.worker.database).notices.for_store("us-main") == []


def _wait(condition: Callable[[], bool]) -> bool:
    return wait_until(condition, 10.0)
