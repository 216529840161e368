"""``check`` probes for a TikTok store (the shop picker itself: tests/test_shops.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from email.utils import format_datetime
from typing import Any

import pytest
import requests
import responses

from cancelsync.clients.checks import CheckResult
from cancelsync.clients.http import RetryPolicy
from cancelsync.clients.tiktok.checks import check_tiktok
from cancelsync.clients.tiktok.client import TikTokClient
from cancelsync.clients.tiktok.tokens import TikTokAuthClient, TokenManager
from cancelsync.clock import FakeClock
from cancelsync.config import RefundToCancelConfig, StoreConfig
from cancelsync.models import TikTokShop, TokenPair

API = "https://open-api.test"
SHOPS_URL = f"{API}/authorization/202309/shops"
US = TikTokShop("7495000000000000001", "US Shop", "US", "ROW_US")
GB = TikTokShop("7495000000000000002", "UK Shop", "GB", "ROW_GB")


def _shop_json(shop: TikTokShop) -> dict[str, str]:
    return {
        "id": shop.tiktok_shop_id,
        "name": shop.name,
        "region": shop.region,
        "cipher": shop.cipher,
    }


def _store(**overrides: Any) -> StoreConfig:
    values: dict[str, Any] = {
        "name": "us-main",
        "app_key": "k",
        "app_secret": "s",
        "magento_refund_to_tiktok_cancel": RefundToCancelConfig(
            enabled=True, cancel_reason="wrong_price"
        ),
    }
    values.update(overrides)
    return StoreConfig(**values)


@pytest.fixture
def client(clock: FakeClock) -> Iterator[tuple[TikTokClient, responses.RequestsMock]]:
    """A client with a token that never needs refreshing and instant retries."""
    pair = TokenPair("AT", "RT")
    with requests.Session() as session, responses.RequestsMock() as rsps:
        auth = TikTokAuthClient(
            session,
            auth_base_url="https://auth.test",
            app_key="k",
            app_secret="s",
            timeout=5,
        )
        manager = TokenManager(
            auth, load=lambda: pair, persist=lambda p: None, clock=clock
        )
        yield (
            TikTokClient(
                session,
                base_url=API,
                app_key="k",
                app_secret="s",
                tokens=manager,
                shop_cipher=None,
                clock=clock,
                timeout=5,
                retry=RetryPolicy(attempts=1, sleep=lambda s: None),
            ),
            rsps,
        )


def _by_name(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {r.name: r for r in results}


def _reply_shops(
    rsps: responses.RequestsMock,
    clock: FakeClock,
    shops: list[TikTokShop],
    skew: int = 0,
) -> None:
    date = format_datetime(clock.now() + timedelta(seconds=skew), usegmt=True)
    rsps.get(
        SHOPS_URL,
        json={
            "code": 0,
            "message": "Success",
            "request_id": "R",
            "data": {"shops": [_shop_json(s) for s in shops]},
        },
        headers={"Date": date},
    )


def test_all_checks_pass_for_one_shop(client: Any, clock: FakeClock) -> None:
    """Credentials, the only shop, a family valid for both statuses and a synced clock."""
    tiktok, rsps = client
    _reply_shops(rsps, clock, [US])
    results = _by_name(check_tiktok(tiktok, _store(), clock=clock))
    assert list(results) == [
        "tiktok credentials",
        "tiktok shop",
        "tiktok cancel reason",
        "tiktok clock",
    ]
    assert all(r.ok and r.fix is None for r in results.values())
    assert US.tiktok_shop_id in results["tiktok shop"].detail
    assert (
        "seller_cancel_unpaid_reason_wrong_price"
        in results["tiktok cancel reason"].detail
    )


def test_paid_only_reason_informs_which_status_has_no_key(
    client: Any, clock: FakeClock
) -> None:
    """The address-not-deliver default works for paid orders; UNPAID having no key is
    information, not a warning."""
    tiktok, rsps = client
    _reply_shops(rsps, clock, [GB])
    store = _store(
        magento_refund_to_tiktok_cancel=RefundToCancelConfig(
            enabled=True, cancel_reason="seller_cancel_paid_reason_address_not_deliver"
        )
    )
    reason = _by_name(check_tiktok(tiktok, store, clock=clock))["tiktok cancel reason"]
    assert reason.ok
    assert reason.info
    assert reason.fix is None  # nothing to fix: said once, as information
    assert "seller_cancel_paid_reason_address_not_deliver_uk" in reason.detail
    assert "no key for UNPAID" in reason.detail


def test_unknown_reason_fails(client: Any, clock: FakeClock) -> None:
    """A reason that is no seller key for the market fails with a fix."""
    tiktok, rsps = client
    _reply_shops(rsps, clock, [US])
    store = _store(
        magento_refund_to_tiktok_cancel=RefundToCancelConfig(
            enabled=True, cancel_reason="potential_fraud"
        )
    )
    reason = _by_name(check_tiktok(tiktok, store, clock=clock))["tiktok cancel reason"]
    assert not reason.ok
    assert "cancelsync reasons --store us-main" in (reason.fix or "")


def test_several_shops_without_shop_id_fails_listing_them(
    client: Any, clock: FakeClock
) -> None:
    """With two authorized shops and no shop_id the shop check lists both ids."""
    tiktok, rsps = client
    _reply_shops(rsps, clock, [US, GB])
    shop = _by_name(check_tiktok(tiktok, _store(market="US"), clock=clock))[
        "tiktok shop"
    ]
    assert not shop.ok
    assert US.tiktok_shop_id in shop.detail
    assert GB.tiktok_shop_id in shop.detail


def test_configured_cipher_of_another_shop_fails(client: Any, clock: FakeClock) -> None:
    """A shop_cipher that is not the shop's own is reported with a fix."""
    tiktok, rsps = client
    _reply_shops(rsps, clock, [US, GB])
    store = _store(shop_id=US.tiktok_shop_id, shop_cipher=GB.cipher)
    shop = _by_name(check_tiktok(tiktok, store, clock=clock))["tiktok shop"]
    assert not shop.ok
    assert "shop_cipher" in shop.detail


@pytest.mark.parametrize(("skew", "word"), [(-45, "ahead"), (400, "behind")])
def test_clock_skew_beyond_tiktoks_window_warns(
    client: Any, clock: FakeClock, skew: int, word: str
) -> None:
    """A host clock > 30 s ahead or > 5 min behind TikTok's Date warns with a fix."""
    tiktok, rsps = client
    _reply_shops(rsps, clock, [US], skew=skew)
    result = _by_name(check_tiktok(tiktok, _store(), clock=clock))["tiktok clock"]
    assert result.ok
    assert word in result.detail
    assert "NTP" in (result.fix or "")


def test_timestamp_refusal_fails_credentials_and_clock(
    client: Any, clock: FakeClock
) -> None:
    """TikTok's 36009004 timestamp error fails both the credential and clock checks."""
    tiktok, rsps = client
    rsps.get(
        SHOPS_URL,
        json={"code": 36009004, "message": "timestamp is expired", "request_id": "R"},
    )
    results = _by_name(check_tiktok(tiktok, _store(), clock=clock))
    assert not results["tiktok credentials"].ok
    assert not results["tiktok clock"].ok
    assert "tiktok shop" not in results


def test_bad_token_fails_credentials_with_reauthorize_fix(
    client: Any, clock: FakeClock
) -> None:
    """101000 fails the credential check and names the connect command."""
    tiktok, rsps = client
    rsps.get(
        SHOPS_URL,
        json={"code": 101000, "message": "Invalid token", "request_id": "R"},
        status=401,
    )
    (result,) = check_tiktok(tiktok, _store(), clock=clock)
    assert not result.ok
    assert "cancelsync connect" in (result.fix or "")
