"""The TikTok simulator's webhooks: subscriptions and signed deliveries (reference §7).

- ``PUT /event/202309/webhooks`` with ``{"address", "event_type"}`` (and ``shop_cipher``)
  subscribes a shop for ``ORDER_STATUS_CHANGE`` (type 1) or
  ``CANCELLATION_STATUS_CHANGE`` (type 11); ``GET`` lists them. Which OAuth scope the
  event API needs is not in the references: the simulator asks for
  ``seller.order.info`` (a guess).
- Each status change the world reports becomes the envelope ``{type,
  tts_notification_id, shop_id, timestamp, data}``, POSTed with ``Authorization`` = lowercase
  hex HMAC-SHA256 (key: the subscribing app's secret) over ``app_key + raw body``.
- A delivery not answered 200 is redelivered. TikTok waits about 2 min, 30 min, 3 h and
  12 h (**UNCONFIRMED**); the simulator compresses that into ``redeliver_after`` seconds.
- Delivery runs on its own thread, never under the simulator's lock, so a slow receiver
  never slows the API down; ``deliveries`` journals every attempt for tests.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import requests

EVENT_TYPES = {"ORDER_STATUS_CHANGE": 1, "CANCELLATION_STATUS_CHANGE": 11}


@dataclass
class Subscription:
    shop_id: str
    event_type: str
    address: str
    app_key: str
    app_secret: str


@dataclass
class Delivery:
    notification_id: str
    kind: int
    shop_id: str
    address: str
    status: int | None  # None: no answer (refused, timed out)
    sent_at: float
    data: dict[str, Any] = field(default_factory=dict)


class WebhookSender:
    """Subscriptions per shop and event type, and the thread that delivers."""

    def __init__(
        self, *, redeliver_after: tuple[float, ...] = (0.5, 2.0), timeout: float = 2.0
    ) -> None:
        self.redeliver_after = redeliver_after
        self.timeout = timeout
        self.subscriptions: dict[tuple[str, str], Subscription] = {}
        self.deliveries: list[Delivery] = []
        self._queue: queue.Queue[tuple[float, int, dict[str, Any], Subscription]] = (
            queue.Queue()
        )
        self._sequence = 0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()

    # ------------------------------------------------------------------ API side

    def subscribe(self, sub: Subscription) -> None:
        with self._lock:
            self.subscriptions[(sub.shop_id, sub.event_type)] = sub
        self._start()

    def listed(self, shop_id: str) -> list[dict[str, Any]]:
        with self._lock:
            subs = [s for (shop, _), s in self.subscriptions.items() if shop == shop_id]
        return [{"address": s.address, "event_type": s.event_type} for s in subs]

    # ------------------------------------------------------------------ world side

    def on_change(self, kind: int, shop_id: str, data: dict[str, Any]) -> None:
        """A world listener: queue a delivery for each matching subscription."""
        for event_type, number in EVENT_TYPES.items():
            if number != kind:
                continue
            with self._lock:
                sub = self.subscriptions.get((shop_id, event_type))
                self._sequence += 1
                notification = f"73800662840{self._sequence:08d}"
            if sub is not None:
                envelope = {
                    "type": kind, "tts_notification_id": notification,
                    "shop_id": shop_id, "timestamp": int(time.time()), "data": data,
                }  # fmt: skip
                self._queue.put((time.monotonic(), 0, envelope, sub))

    # ------------------------------------------------------------------ delivery

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="sandbox-webhooks", daemon=True
                )
                self._thread.start()

    def stop(self) -> None:
        self._stopped.set()

    def _run(self) -> None:
        waiting: list[tuple[float, int, dict[str, Any], Subscription]] = []
        while not self._stopped.is_set():
            with contextlib.suppress(queue.Empty):
                waiting.append(self._queue.get(timeout=0.05))
            now = time.monotonic()
            due = [w for w in waiting if w[0] <= now]
            waiting = [w for w in waiting if w[0] > now]
            for _, attempt, envelope, sub in due:
                if not self._send(envelope, sub) and attempt < len(
                    self.redeliver_after
                ):
                    later = now + self.redeliver_after[attempt]
                    waiting.append((later, attempt + 1, envelope, sub))

    def _send(self, envelope: dict[str, Any], sub: Subscription) -> bool:
        body = json.dumps(envelope, separators=(",", ":")).encode()
        signature = hmac.new(
            sub.app_secret.encode(), sub.app_key.encode() + body, hashlib.sha256
        ).hexdigest()
        status: int | None
        try:
            resp = requests.post(
                sub.address, data=body, timeout=self.timeout,
                headers={"Authorization": signature, "Content-Type": "application/json"},
            )  # fmt: skip
            status = resp.status_code
        except requests.RequestException:
            status = None
        with self._lock:
            self.deliveries.append(
                Delivery(envelope["tts_notification_id"], envelope["type"],
                         envelope["shop_id"], sub.address, status, time.time(),
                         envelope["data"])
            )  # fmt: skip
        return status == 200
