"""The API-facing commands end to end: check, connect, reasons, token rotation, service."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from .conftest import Harness


def _stored_tokens(harness: Harness, name: str = "us-main") -> object:
    from cancelsync.config import load_config
    from cancelsync.scopes import token_scope

    config = load_config(harness.config_path)
    store = harness.store()
    try:
        return store.tokens.get(token_scope(store, config.store(name)))
    finally:
        store.close()


def test_check_passes_against_the_sandbox(harness: Harness) -> None:
    """`check` reaches both simulators and reports every probe as passed."""
    harness.sb.add_store("us-main")

    rc, out = harness.run("check")

    assert rc == 0, out
    assert "all checks passed" in out
    assert "tiktok store us-main" in out


def test_check_fails_with_a_fix_when_the_app_secret_is_wrong(harness: Harness) -> None:
    """A wrong TikTok app secret fails the check (exit 1) and says what to fix."""
    harness.sb.add_store("us-main")
    harness.sb.write_config(harness.config_path)
    text = harness.config_path.read_text().replace(
        harness.sb.demo.app_secret, "not-the-secret"
    )
    harness.config_path.write_text(text)
    import io

    from cancelsync.cli import main

    out = io.StringIO()
    rc = main(["--config", str(harness.config_path), "check"], stdout=out)

    assert rc == 1
    assert "FAIL" in out.getvalue()
    assert "fix:" in out.getvalue()


def test_connect_exchanges_a_code_and_binds_the_shop(harness: Harness) -> None:
    """`connect` stores the tokens and the shop; a run then works without a seed."""
    harness.sb.add_store("us-main", with_shop_id=False)
    code = harness.sb.tiktok.issue_auth_code(
        harness.sb.demo.app_key, [harness.sb.demo.shop_id]
    )
    harness.sb.write_config(harness.config_path)
    # Drop the token seed: the connect command must be enough.
    text = "\n".join(
        line for line in harness.config_path.read_text().splitlines()
        if not line.startswith(("access_token = \"", "refresh_token"))
        or "sandbox" in line
    )  # fmt: skip
    harness.config_path.write_text(text + "\n")
    import io

    from cancelsync.cli import main

    out = io.StringIO()
    rc = main(
        ["--config", str(harness.config_path), "connect", "--store", "us-main",
         "--auth-code", code],
        stdout=out,
    )  # fmt: skip

    assert rc == 0, out.getvalue()
    assert harness.sb.demo.shop_id in out.getvalue()
    assert "market US" in out.getvalue()
    store = harness.store()
    binding = store.shops.get("us-main")
    stored = store.tokens.get(f"shop:{harness.sb.demo.shop_id}")
    store.close()
    assert binding is not None
    assert binding.shop_cipher == harness.sb.demo.shop_cipher
    assert stored is not None

    placed = harness.sb.place_order([{"sku": "A", "qty": 1, "price": 5.0}])
    harness.sb.tiktok.buyer_cancel(placed.tiktok_order_id)
    rc = main(
        ["--config", str(harness.config_path), "run", "--once"], stdout=io.StringIO()
    )
    assert rc == 0
    assert len(harness.memos(placed.magento_entity_id)) == 1


def test_check_and_run_explain_an_unauthorized_shop_id_alike(harness: Harness) -> None:
    """A shop_id the app is not authorized for: `check` and `run` say the same thing."""
    import io
    import json

    from cancelsync.cli import main

    harness.sb.add_store("us-main")
    harness.sb.write_config(harness.config_path)
    text = harness.config_path.read_text().replace(
        f'shop_id = "{harness.sb.demo.shop_id}"', 'shop_id = "999"'
    )
    harness.config_path.write_text(text)
    config = ["--config", str(harness.config_path)]

    check_out, status_out = io.StringIO(), io.StringIO()
    rc_check = main([*config, "check"], stdout=check_out)
    rc_run = main([*config, "run", "--once"], stdout=io.StringIO())
    main([*config, "status", "--json"], stdout=status_out)

    assert (rc_check, rc_run) == (1, 1)
    (checked,) = [
        line.split("[FAIL] tiktok shop: ", 1)[1]
        for line in check_out.getvalue().splitlines()
        if "[FAIL] tiktok shop: " in line
    ]
    assert checked.startswith(
        "stores[us-main].shop_id: shop 999 is not among the shops this app is "
        f"authorized for ({harness.sb.demo.shop_id} ("
    )
    ran = json.loads(status_out.getvalue())["stores"][0]["last_cycle"]["error"]
    assert checked in ran


def test_reasons_lists_the_market_keys_and_the_translation(uk_harness: Harness) -> None:
    """`reasons` shows the UK keys and what the configured reason becomes."""
    uk_harness.sb.add_store("uk-main", market="UK")

    rc, out = uk_harness.run("reasons", "--store", "uk-main")

    assert rc == 0
    assert "seller_cancel_paid_reason_address_not_deliver_uk" in out
    assert "NO KEY" in out  # address-not-deliver has no unpaid equivalent


def test_rotated_tokens_survive_across_runs(harness: Harness) -> None:
    """An expired access token is refreshed, persisted, and the next run uses the new pair."""
    harness.sb.add_store("us-main")
    rc, _ = harness.run("run", "--once")
    assert rc == 0
    harness.sb.tiktok.expire_access_tokens()

    rc, _ = harness.run("run", "--once")
    assert rc == 0
    pair, _seed = _stored_tokens(harness) or (None, None)
    assert pair is not None
    assert pair.refresh_token != harness.sb.demo.refresh_token

    # The seed's refresh token is dead now; a third run must use the stored pair.
    placed = harness.sb.place_order([{"sku": "A", "qty": 1, "price": 5.0}])
    harness.sb.tiktok.buyer_cancel(placed.tiktok_order_id)
    rc, _ = harness.run("run", "--once")
    assert rc == 0
    assert len(harness.memos(placed.magento_entity_id)) == 1
    refreshes = harness.sb.tiktok_server.journal.count(r"GET /api/v2/token/refresh")
    assert refreshes == 1


def test_dry_run_still_saves_a_rotated_refresh_token(harness: Harness) -> None:
    """Even in --dry-run a refresh's new pair is stored (the old one is dead)."""
    harness.sb.add_store("us-main")
    harness.sb.tiktok.expire_access_tokens()

    rc, _ = harness.run("run", "--once", "--dry-run")

    assert rc == 0
    stored = _stored_tokens(harness)
    assert stored is not None
    assert stored[0].refresh_token != harness.sb.demo.refresh_token


def test_revoked_authorization_fails_the_store_and_status_shows_it(
    harness: Harness,
) -> None:
    """An expired refresh token stops the store (exit 1) and `status` asks to re-authorize."""
    harness.sb.add_store("us-main")
    harness.sb.tiktok.expire_access_tokens()
    harness.sb.tiktok.expire_refresh_tokens()

    rc, _ = harness.run("run", "--once")

    assert rc == 1
    store_status = harness.status()["stores"][0]
    assert store_status["auth"]["status"] == "reauthorize"
    assert store_status["last_cycle"]["outcome"] == "error"
    assert "connect" in store_status["last_cycle"]["error"]


def test_service_mode_syncs_and_stops_cleanly_on_sigterm(harness: Harness) -> None:
    """`run` polls on its schedule and exits 0 on SIGTERM after finishing its cycle."""
    harness.sb.add_store("us-main")
    placed = harness.sb.place_order([{"sku": "A", "qty": 1, "price": 5.0}])
    harness.sb.tiktok.buyer_cancel(placed.tiktok_order_id)
    harness.sb.write_config(harness.config_path, poll_interval_seconds=1)
    env = {**os.environ, "CANCELSYNC_CONFIG": str(harness.config_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cancelsync", "run"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not harness.memos(
            placed.magento_entity_id
        ):
            time.sleep(0.1)
        assert len(harness.memos(placed.magento_entity_id)) == 1
        # A second instance is refused while the service holds the lock.
        rc, _ = harness.run("run", "--once")
        assert rc == 75
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err.decode()[-2000:]
    assert b"service.stopped" in err
    assert len(harness.memos(placed.magento_entity_id)) == 1


@pytest.mark.parametrize(
    ("max_in_flight", "orders"), [(1, 3), (4, 6)], ids=["sequential", "4-in-flight"]
)
def test_stop_request_finishes_the_action_in_flight_and_keeps_the_cursor(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, max_in_flight: int, orders: int
) -> None:
    """A stop between events ends the cycle once the actions in flight are recorded
    (one at a time: exactly the one); the rest is picked up by the next run, each
    order refunded once."""
    from cancelsync.clients.magento.client import MagentoClient
    from cancelsync.config import load_config
    from cancelsync.log import Redactor
    from cancelsync.service import Worker
    from cancelsync.store import Store
    from cancelsync.wiring import ClientFactory

    harness.sb.add_store("us-main")
    placed = [
        harness.sb.place_order([{"sku": f"S{i}", "qty": 1, "price": 5.0}])
        for i in range(orders)
    ]
    for p in placed:
        harness.sb.tiktok.buyer_cancel(p.tiktok_order_id)
    harness.sb.write_config(harness.config_path, max_in_flight=max_in_flight)
    config = load_config(harness.config_path)
    store = Store.open(config.worker.database)
    clients = ClientFactory(config, store, redactor=Redactor())
    worker = Worker(config, store, clients)
    real_refund = MagentoClient.refund_order

    def refund_then_stop(self: MagentoClient, *args: object, **kwargs: object) -> int:
        memo_id = real_refund(self, *args, **kwargs)  # type: ignore[arg-type]
        worker.request_stop()  # SIGTERM arrives while this refund is in flight
        return memo_id

    monkeypatch.setattr(MagentoClient, "refund_order", refund_then_stop)
    try:
        reports = worker.run_once()
        cursor = store.cursors.get(
            f"shop:{harness.sb.demo.shop_id}", "tiktok.cancellations"
        )
    finally:
        clients.close()
        store.close()

    assert reports[0].ok
    assert reports[0].counts["stopped_early"] == 1
    refunded = sum(len(harness.memos(p.magento_entity_id)) for p in placed)
    # Every action that was in flight finished and recorded its outcome.
    assert [e.state for e in harness.ledger()] == ["done"] * refunded
    assert 1 <= refunded <= (1 if max_in_flight == 1 else orders - 1)
    assert cursor is None  # the page was not finished: nothing skipped over
    monkeypatch.setattr(MagentoClient, "refund_order", real_refund)
    rc, _ = harness.run("run", "--once")
    assert rc == 0
    assert [len(harness.memos(p.magento_entity_id)) for p in placed] == [1] * orders


def test_two_shops_of_one_authorization_share_their_rotated_tokens(
    harness: Harness,
) -> None:
    """Two stores seeded with one seller's token pair both survive a refresh."""
    from dataclasses import replace

    from cancelsync.sandbox.harness import StoreSpec

    sb = harness.sb
    second_shop = sb.tiktok.add_shop(name="second shop", region="US")
    access, refresh = sb.tiktok.seed_tokens(
        sb.demo.app_key, [sb.demo.shop_id, second_shop]
    )
    shared = replace(sb.demo, access_token=access, refresh_token=refresh)
    sb.stores.append(StoreSpec("first", shared, magento_store_ids=(1,)))
    sb.stores.append(
        StoreSpec(
            "second",
            replace(shared, shop_id=second_shop,
                    shop_cipher=sb.tiktok.shop(second_shop)["cipher"]),
            magento_store_ids=(2,),
        )
    )  # fmt: skip
    rc, _ = harness.run("run", "--once")
    assert rc == 0
    sb.tiktok.expire_access_tokens()

    for _ in range(2):
        rc, _ = harness.run("run", "--once")
        assert rc == 0

    assert sb.tiktok_server.journal.count(r"GET /api/v2/token/refresh") == 1
    statuses = {s["name"]: s["auth"]["status"] for s in harness.status()["stores"]}
    assert statuses == {"first": "ok", "second": "ok"}


def test_no_secret_reaches_the_logs_of_a_real_run(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run that refreshes tokens and writes both ways prints no secret, old or new."""
    harness.sb.add_store("us-main", refund_to_cancel=True)
    a = harness.sb.place_order([{"sku": "A", "qty": 1, "price": 5.0}])
    b = harness.sb.place_order([{"sku": "B", "qty": 1, "price": 5.0}])
    harness.sb.tiktok.buyer_cancel(a.tiktok_order_id)
    harness.sb.magento.create_credit_memo(b.magento_entity_id, None)
    harness.sb.tiktok.expire_access_tokens()
    capsys.readouterr()

    # debug: one line per HTTP request too, so every event a run can log is looked at.
    rc, _ = harness.run("--log-level", "debug", "run", "--once")
    rc2, _ = harness.run("check", "--log-level", "debug")
    logs = capsys.readouterr().err

    assert (rc, rc2) == (0, 0)
    assert "http.request" in logs  # the logs were captured at all
    stored = _stored_tokens(harness)
    assert stored is not None
    rotated = stored[0]  # type: ignore[index]
    creds = harness.sb.credentials
    secrets = [
        harness.sb.demo.app_secret,
        harness.sb.demo.access_token,
        harness.sb.demo.refresh_token,
        rotated.access_token,
        rotated.refresh_token,
        creds.consumer_secret,
        creds.access_token,
        creds.access_token_secret,
    ]
    for secret in secrets:
        assert secret not in logs


def test_check_finds_recent_tiktok_orders_in_magento(harness: Harness) -> None:
    """`check` looks a few recent paid TikTok orders up in Magento and counts them."""
    harness.sb.add_store("us-main")
    for _ in range(3):
        harness.sb.place_order([{"sku": "A", "qty": 1, "price": 5.0}])

    rc, out = harness.run("check")

    assert rc == 0, out
    assert "3 of the 3 most recent paid TikTok orders found in Magento" in out


def test_check_fails_when_no_recent_tiktok_order_is_in_magento(
    harness: Harness,
) -> None:
    """When none of the recent TikTok orders is found by the configured field, every
    cancellation would be "never imported": `check` fails and names the setting."""
    harness.sb.add_store("us-main")
    for _ in range(3):
        harness.sb.tiktok.create_order(
            harness.sb.demo.shop_id,
            [{"sku_id": "1", "seller_sku": "X", "price": "3.00", "quantity": 1}],
        )

    rc, out = harness.run("check")

    assert rc == 1
    assert "0 of the 3 most recent paid TikTok orders found in Magento" in out
    assert "magento.tiktok_order_id_field" in out


def test_webhooks_subscribe_through_the_cli(harness: Harness) -> None:
    """`cancelsync webhooks subscribe` subscribes the store's shop (exit 0); a URL TikTok
    would not deliver to is a usage-level error (exit 2) with the reason."""
    harness.sb.add_store("us-main")
    url = "http://127.0.0.1:8787/tiktok/webhook"

    rc, out = harness.run("webhooks", "subscribe", "--store", "us-main", "--url", url)
    bad, _ = harness.run(
        "webhooks", "subscribe", "--store", "us-main", "--url", "http://x.example/hook"
    )

    assert rc == 0, out
    assert "CANCELLATION_STATUS_CHANGE" in out
    assert len(harness.sb.tiktok.webhooks.listed(harness.sb.demo.shop_id)) == 2
    assert bad == 2
