"""TikTok webhooks: verified (vector W0), size-capped, de-duplicated, waking stores."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from cancelsync.clients.tiktok.signing import webhook_signature
from cancelsync.webhooks import (
    MAX_BODY_BYTES,
    PATH,
    SeenIds,
    Waker,
    WebhookApp,
    WebhookServer,
    judge,
)

VECTORS = json.loads(
    (Path(__file__).parent / "fixtures" / "tiktok" / "signing-vectors.json").read_text()
)
W0 = VECTORS["webhook_vectors"][0]
W0_BODY: bytes = W0["body"].encode()
W0_SHOP = "7495540735365777507"
APP = WebhookApp("us-main", W0_SHOP, W0["app_key"], W0["app_secret"])
OTHER = WebhookApp("uk", "7495000000000000009", "other-key", "other-secret")


def _envelope(kind: int, notification_id: str = "n-1", shop: str = W0_SHOP) -> bytes:
    return json.dumps(
        {"type": kind, "tts_notification_id": notification_id, "shop_id": shop,
         "timestamp": 1718305585, "data": {"order_id": "576", "cancel_status": "x"}}
    ).encode()  # fmt: skip


def _signed(body: bytes, app: WebhookApp = APP) -> str:
    return webhook_signature(app.app_key, app.app_secret, body)


def test_documented_delivery_w0_is_accepted_and_wakes_its_store() -> None:
    """TikTok's documented example verifies with its documented header and wakes the
    store bound to its shop (and not another store's)."""
    verdict = judge(W0_BODY, W0["expected_authorization"], [OTHER, APP], SeenIds())
    assert verdict.status == 200
    assert verdict.wake == ("us-main",)


@pytest.mark.parametrize(
    ("body", "header"),
    [
        (W0_BODY, webhook_signature(W0["app_key"], "wrong-secret", W0_BODY)),
        (W0_BODY.replace(b"UNPAID", b"CANCEL"), W0["expected_authorization"]),
        (W0_BODY, ""),
        (W0_BODY, "Bearer " + W0["expected_authorization"]),
    ],
    ids=["wrong-secret", "tampered-body", "no-header", "bearer-prefix"],
)
def test_a_delivery_that_does_not_verify_is_refused(body: bytes, header: str) -> None:
    """Wrong secret, tampered body, missing or decorated header: 401, nothing woken."""
    verdict = judge(body, header, [APP, OTHER], SeenIds())
    assert verdict.status == 401
    assert verdict.wake == ()


def test_a_redelivery_is_answered_but_dropped() -> None:
    """The same tts_notification_id twice wakes the store once."""
    seen = SeenIds()
    body = _envelope(11, "n-7")
    first = judge(body, _signed(body), [APP], seen)
    again = judge(body, _signed(body), [APP], seen)
    assert (first.status, first.wake) == (200, ("us-main",))
    assert (again.status, again.wake) == (200, ())
    assert again.message == "duplicate delivery"


def test_authorization_notices_are_handed_on_and_others_ignored() -> None:
    """Types 6/7 reach the authorization callback; an unknown type is only logged."""
    seen = SeenIds()
    deauth = judge(_envelope(6, "a"), _signed(_envelope(6, "a")), [APP], seen)
    other = judge(_envelope(12, "b"), _signed(_envelope(12, "b")), [APP], seen)
    assert deauth.authorization == ("us-main",)
    assert deauth.wake == ()
    assert other.message == "ignored"
    assert other.wake == other.authorization == ()


def test_seen_ids_forget_the_oldest_beyond_capacity() -> None:
    """The memory is bounded: the least recently seen id is forgotten first."""
    seen = SeenIds(capacity=2)
    assert [seen.first_time(i) for i in ("a", "b", "a", "c")] == [
        True, True, False, True,
    ]  # fmt: skip
    # "a" was seen again after "b", so "b" was the one forgotten when "c" came.
    assert seen.first_time("a") is False
    assert seen.first_time("b") is True


def test_server_verifies_caps_and_wakes_over_http() -> None:
    """Over HTTP: 200 and a wake for a signed delivery, 401 for a forged one, 413 for
    an oversized body, 404 elsewhere; the answer comes before the wake is handled."""
    woke: list[str] = []
    server = WebhookServer(
        "127.0.0.1", 0, apps=lambda: [APP], on_wake=woke.append
    ).start()
    url = f"http://127.0.0.1:{server.port}{PATH}"
    try:
        body = _envelope(11, "n-http")
        ok = requests.post(
            url, data=body, headers={"Authorization": _signed(body)}, timeout=5
        )
        forged = requests.post(
            url, data=body, headers={"Authorization": "0" * 64}, timeout=5
        )
        big = requests.post(
            url, data=b"{" + b" " * MAX_BODY_BYTES + b"}",
            headers={"Authorization": _signed(body)}, timeout=5,
        )  # fmt: skip
        elsewhere = requests.post(url + "x", data=body, timeout=5)
    finally:
        server.stop()
    assert [ok.status_code, forged.status_code, big.status_code, elsewhere.status_code] == [
        200, 401, 413, 404,
    ]  # fmt: skip
    assert woke == ["us-main"]


def test_waker_debounces_many_wakes_into_one_run() -> None:
    """Any number of wakes before the loop looks make one set of stores to run."""
    waker = Waker()
    for _ in range(5):
        waker.wake("us-main")
    waker.wake("uk")
    assert waker.wait(0) == {"us-main", "uk"}
    assert waker.wait(0) == set()


def test_waker_wait_returns_as_soon_as_a_wake_arrives() -> None:
    """A waiting loop is released by a wake from another thread, not by its timeout."""
    waker = Waker()
    got: list[Any] = []
    thread = threading.Thread(target=lambda: got.append(waker.wait(30)))
    thread.start()
    waker.wake("us-main")
    thread.join(timeout=5)
    assert got == [{"us-main"}]


def test_the_tiktok_simulator_delivers_signed_webhooks_to_the_receiver() -> None:
    """A buyer cancel in the simulator reaches the receiver as a type-11 delivery that
    verifies with the app's credentials (two independent HMAC implementations agree)
    and wakes the shop's store."""
    from cancelsync.sandbox.harness import Sandbox
    from cancelsync.sandbox.tiktok.webhooks import Subscription

    woke = Waker()
    with Sandbox() as sb:
        demo = sb.demo
        app = WebhookApp("us-main", demo.shop_id, demo.app_key, demo.app_secret)
        server = WebhookServer(
            "127.0.0.1", 0, apps=lambda: [app], on_wake=woke.wake
        ).start()
        sender = sb.tiktok.webhooks
        address = f"http://127.0.0.1:{server.port}{PATH}"
        sender.subscribe(Subscription(demo.shop_id, "CANCELLATION_STATUS_CHANGE",
                                      address, demo.app_key, demo.app_secret))  # fmt: skip
        try:
            placed = sb.place_order([{"sku": "A", "qty": 1, "price": 5.0}])
            sb.tiktok.buyer_cancel(placed.tiktok_order_id)
            assert woke.wait(5) == {"us-main"}
            # The sender journals a delivery once it has read the answer, which can
            # come after the receiver has already woken the store.
            deadline = time.monotonic() + 5
            accepted: list[Any] = []
            while not accepted and time.monotonic() < deadline:
                accepted = [
                    d for d in sender.deliveries if d.kind == 11 and d.status == 200
                ]
                time.sleep(0.01)
        finally:
            server.stop()
            sender.stop()
    assert accepted[0].data["order_id"] == placed.tiktok_order_id
    assert accepted[0].data["cancel_status"] == "CANCELLATION_REQUEST_COMPLETE"


def test_the_simulator_redelivers_until_answered_200() -> None:
    """A receiver answering 500 gets the same notification again (same id)."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from cancelsync.sandbox.tiktok.webhooks import Subscription, WebhookSender

    answers = [500, 200]
    got: list[str] = []

    class Flaky(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append(json.loads(body)["tts_notification_id"])
            self.send_response(answers.pop(0) if answers else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    flaky = ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    threading.Thread(target=flaky.serve_forever, daemon=True).start()
    sender = WebhookSender(redeliver_after=(0.1, 0.1))
    try:
        address = f"http://127.0.0.1:{flaky.server_address[1]}/"
        sender.subscribe(Subscription("s1", "ORDER_STATUS_CHANGE", address, "k", "s"))
        sender.on_change(1, "s1", {"order_id": "576", "order_status": "CANCELLED"})
        deadline = time.monotonic() + 5
        while len(got) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        sender.stop()
        flaky.shutdown()
        flaky.server_close()
    assert [d.status for d in sender.deliveries] == [500, 200]
    assert len(got) == 2
    assert got[0] == got[1]


def test_subscribe_points_both_event_types_at_the_url(tmp_path: Path) -> None:
    """`webhooks subscribe` registers order and cancellation events for the store's
    shop through the (signed) API; a non-https URL is refused before any call."""
    import io

    from cancelsync.config import load_config
    from cancelsync.errors import ConfigError
    from cancelsync.log import Redactor
    from cancelsync.sandbox.harness import Sandbox
    from cancelsync.webhook_setup import subscribe

    with Sandbox() as sb:
        sb.add_store("us-main")
        config = load_config(sb.write_config(tmp_path / "cancelsync.toml"))
        url = f"http://127.0.0.1:8787{PATH}"
        out = io.StringIO()
        rc = subscribe(config, out, redactor=Redactor(), store_name="us-main", url=url)
        listed = sb.tiktok.webhooks.listed(sb.demo.shop_id)
        with pytest.raises(ConfigError, match="https"):
            subscribe(config, out, redactor=Redactor(), store_name="us-main",
                      url=f"http://example.com{PATH}")  # fmt: skip
    assert rc == 0
    assert sorted(s["event_type"] for s in listed) == [
        "CANCELLATION_STATUS_CHANGE", "ORDER_STATUS_CHANGE",
    ]  # fmt: skip
    assert {s["address"] for s in listed} == {url}
    assert "webhook_listen is not set" in out.getvalue()
