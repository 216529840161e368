"""TikTok token host client and TokenManager: exchange, rotation, re-authorization."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import responses
from structlog.testing import capture_logs

from cancelsync.clients.http import RetryPolicy
from cancelsync.clients.tiktok.tokens import TikTokAuthClient, TokenManager
from cancelsync.clock import FakeClock, to_epoch
from cancelsync.errors import AuthError, RetryableApiError
from cancelsync.models import TokenPair

AUTH = "https://auth.test"
APP_KEY = "test_app_key"
APP_SECRET = "very_secret_value"
REFRESH_URL = f"{AUTH}/api/v2/token/refresh"
GET_URL = f"{AUTH}/api/v2/token/get"
CONNECT = "cancelsync connect --store us-main --auth-code CODE"


@dataclass
class MemoryTokens:
    """A stand-in for the token table that records every persist call."""

    pair: TokenPair | None
    saved: list[TokenPair] = field(default_factory=list)
    loads: int = 0

    def load(self) -> TokenPair | None:
        self.loads += 1
        return self.pair

    def persist(self, pair: TokenPair) -> None:
        self.saved.append(pair)
        self.pair = pair


@dataclass
class Harness:
    auth: TikTokAuthClient
    rsps: responses.RequestsMock
    clock: FakeClock
    sleeps: list[float]

    def manager(self, tokens: MemoryTokens) -> TokenManager:
        return TokenManager(
            self.auth,
            load=tokens.load,
            persist=tokens.persist,
            clock=self.clock,
            store_name="us-main",
        )


@pytest.fixture
def harness(clock: FakeClock) -> Iterator[Harness]:
    """An auth client on a mocked token host with instant retries."""
    sleeps: list[float] = []
    with requests.Session() as session, responses.RequestsMock() as rsps:
        auth = TikTokAuthClient(
            session,
            auth_base_url=AUTH,
            app_key=APP_KEY,
            app_secret=APP_SECRET,
            timeout=5,
            retry=RetryPolicy(sleep=sleeps.append),
        )
        yield Harness(auth, rsps, clock, sleeps)


def grant(access: str, refresh: str, access_at: int, refresh_at: int) -> dict[str, Any]:
    return {
        "code": 0,
        "message": "success",
        "request_id": "RID",
        "data": {
            "access_token": access,
            "access_token_expire_in": access_at,
            "refresh_token": refresh,
            "refresh_token_expire_in": refresh_at,
            "open_id": "OPEN",
            "seller_name": "Shop",
            "seller_base_region": "US",
        },
    }


def query_of(call: Any) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(call.request.url).query))


def test_exchange_code_sends_the_code_and_logs_the_path_only(harness: Harness) -> None:
    """The auth code goes out with the app secret, which never reaches the logs."""
    harness.rsps.get(GET_URL, json=grant("AT", "RT", 1900000000, 4900000000))
    with capture_logs() as logs:
        result = harness.auth.exchange_code("CODE123")
    assert result.access_token == "AT"
    assert result.access_token_expire_at == 1900000000
    query = query_of(harness.rsps.calls[0])
    assert query == {
        "app_key": APP_KEY,
        "app_secret": APP_SECRET,
        "auth_code": "CODE123",
        "grant_type": "authorized_code",
    }
    assert [e["path"] for e in logs if e["event"] == "http.request"] == [
        "/api/v2/token/get"
    ]
    assert APP_SECRET not in repr(logs)
    assert "CODE123" not in repr(logs)


def test_refresh_rotation_persists_both_tokens(harness: Harness) -> None:
    """An expired access token is refreshed and the new pair saved before use."""
    now = to_epoch(harness.clock.now())
    tokens = MemoryTokens(TokenPair("AT1", "RT1", now - 1, now + 86400))
    harness.rsps.get(REFRESH_URL, json=grant("AT2", "RT2", now + 604800, now + 10**9))
    with capture_logs() as logs:
        assert harness.manager(tokens).access_token() == "AT2"
    assert tokens.saved == [TokenPair("AT2", "RT2", now + 604800, now + 10**9)]
    query = query_of(harness.rsps.calls[0])
    assert query["refresh_token"] == "RT1"
    assert query["grant_type"] == "refresh_token"
    assert "RT2" not in repr(logs)
    assert "AT2" not in repr(logs)


def test_refresh_happens_within_the_margin_only(harness: Harness) -> None:
    """A token expiring within 300 s is refreshed; one expiring later is not."""
    now = to_epoch(harness.clock.now())
    later = MemoryTokens(TokenPair("AT1", "RT1", now + 301, now + 86400))
    assert harness.manager(later).access_token() == "AT1"
    soon = MemoryTokens(TokenPair("AT1", "RT1", now + 299, now + 86400))
    harness.rsps.get(REFRESH_URL, json=grant("AT2", "RT2", now + 604800, now + 10**9))
    assert harness.manager(soon).access_token() == "AT2"
    assert len(harness.rsps.calls) == 1


def test_seed_without_expiry_is_used_until_refused(harness: Harness) -> None:
    """A config seed with no known expiry is used as is (105002 will refresh it)."""
    tokens = MemoryTokens(TokenPair("SEED_AT", "SEED_RT"))
    assert harness.manager(tokens).access_token() == "SEED_AT"
    assert len(harness.rsps.calls) == 0


def test_pair_rotated_by_another_run_is_used_without_refreshing(
    harness: Harness,
) -> None:
    """When the stored token already differs from the stale one, nothing is sent."""
    now = to_epoch(harness.clock.now())
    tokens = MemoryTokens(TokenPair("AT_NEW", "RT_NEW", now + 604800, now + 10**9))
    pair = harness.manager(tokens).refresh(stale_access_token="AT_OLD")
    assert pair.access_token == "AT_NEW"
    assert len(harness.rsps.calls) == 0
    assert tokens.saved == []


def test_expired_refresh_token_asks_to_reauthorize(harness: Harness) -> None:
    """36004001 raises a non-refreshable AuthError naming the connect command."""
    now = to_epoch(harness.clock.now())
    tokens = MemoryTokens(TokenPair("AT1", "RT1", now - 1, now - 1))
    harness.rsps.get(
        REFRESH_URL,
        json={"code": 36004001, "message": "rt has expired", "request_id": "R9"},
    )
    manager = harness.manager(tokens)
    with pytest.raises(AuthError) as info:
        manager.access_token()
    error = info.value
    assert not error.refreshable
    assert error.code == 36004001
    assert error.request_id == "R9"
    assert CONNECT in (error.hint or "")
    assert tokens.pair is not None
    assert tokens.pair.auth_status == "reauthorize"
    assert tokens.pair.refresh_token == "RT1"
    # The dead pair is remembered: the next run fails fast without calling TikTok.
    with pytest.raises(AuthError, match="authorization lost"):
        manager.access_token()
    assert len(harness.rsps.calls) == 1


def test_no_stored_tokens_points_at_connect(harness: Harness) -> None:
    """Without any stored pair the error says how to get one."""
    with pytest.raises(AuthError) as info:
        harness.manager(MemoryTokens(None)).access_token()
    assert CONNECT in (info.value.hint or "")
    assert not info.value.refreshable


def test_token_host_errors_are_retried_and_keep_the_secret_out(
    harness: Harness,
) -> None:
    """Connection failures are retried; the raised error drops the URL-bearing cause."""
    failure = requests.exceptions.ConnectionError(
        f"RemoteDisconnected for {REFRESH_URL}?app_secret={APP_SECRET}"
    )
    harness.rsps.get(REFRESH_URL, body=failure)
    with pytest.raises(RetryableApiError) as info:
        harness.auth.refresh("RT1")
    assert len(harness.rsps.calls) == 5
    assert len(harness.sleeps) == 4
    assert info.value.__cause__ is None
    assert info.value.__context__ is None
    assert APP_SECRET not in str(info.value)


def test_token_host_5xx_then_success_rotates(harness: Harness) -> None:
    """A 503 from the token host is retried and the rotation still completes."""
    now = to_epoch(harness.clock.now())
    harness.rsps.get(REFRESH_URL, status=503, body="busy")
    harness.rsps.get(REFRESH_URL, json=grant("AT2", "RT2", now + 604800, now + 10**9))
    tokens = MemoryTokens(TokenPair("AT1", "RT1", now - 1, now + 86400))
    assert harness.manager(tokens).refresh().refresh_token == "RT2"
    assert [p.refresh_token for p in tokens.saved] == ["RT2"]
