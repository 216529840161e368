"""TikTok Shop access tokens: the token host client and the rotation manager.

``TikTokAuthClient`` talks to the token host (``/api/v2/token/get`` and ``/refresh``).
Those calls carry the app secret in the query string, so only the path is ever logged
and the ``requests`` exception (whose text holds the full URL) is dropped from error
chains.

``TokenManager`` hands out a valid access token and refreshes it when it has expired or
is about to. A refresh returns a new access token *and* a new refresh token and the old
refresh token stops working, so the new pair is persisted *before* it is used: a crash
right after a refresh must not lose the only refresh token that still works.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import requests
import structlog

from cancelsync.clients.http import RetryPolicy, Transport
from cancelsync.clients.tiktok import envelope, mapper
from cancelsync.clock import Clock, to_epoch
from cancelsync.errors import ApiError, AuthError, FatalApiError
from cancelsync.models import TokenGrant, TokenPair

log = structlog.get_logger("cancelsync.tiktok")

# Paths, not secrets.
TOKEN_GET_PATH = "/api/v2/token/get"  # noqa: S105
TOKEN_REFRESH_PATH = "/api/v2/token/refresh"  # noqa: S105


class TikTokAuthClient:
    """The TikTok token host: exchange a seller's auth code, refresh a token pair."""

    def __init__(
        self,
        session: requests.Session,
        *,
        auth_base_url: str,
        app_key: str,
        app_secret: str,
        timeout: float,
        verify: bool = True,
        retry: RetryPolicy | None = None,
    ) -> None:
        self._transport = Transport(
            session,
            platform=envelope.PLATFORM,
            base_url=auth_base_url,
            timeout=timeout,
            verify=verify,
            retry=retry,
        )
        self._app_key = app_key
        self._app_secret = app_secret

    def exchange_code(self, auth_code: str) -> TokenGrant:
        """Trade the single-use code from the consent page for a token pair."""
        return self._grant(
            TOKEN_GET_PATH, auth_code=auth_code, grant_type="authorized_code"
        )

    def refresh(self, refresh_token: str) -> TokenGrant:
        """Get a new pair; the old refresh token stops working once this succeeds."""
        return self._grant(
            TOKEN_REFRESH_PATH, refresh_token=refresh_token, grant_type="refresh_token"
        )

    def _grant(self, path: str, **params: str) -> TokenGrant:
        query = {"app_key": self._app_key, "app_secret": self._app_secret, **params}
        try:
            resp = self._transport.request(
                "GET", path, envelope.raise_for_response, params=query, log_path=path
            )
        except ApiError as exc:
            # The cause is a requests exception whose text holds the URL and so the
            # secret; keep it out of tracebacks.
            exc.__context__ = None
            raise exc from None
        data = _data(resp)
        return mapper.token_grant_from_json(data)


def _data(resp: requests.Response) -> Any:
    body = envelope.parse_envelope(resp)
    return {} if body is None or body.get("data") is None else body["data"]


def pair_from_grant(grant: TokenGrant) -> TokenPair:
    """The stored form of a token reply."""
    return TokenPair(
        access_token=grant.access_token,
        refresh_token=grant.refresh_token,
        access_token_expire_at=grant.access_token_expire_at,
        refresh_token_expire_at=grant.refresh_token_expire_at,
    )


class TokenManager:
    """Hands out a valid access token, refreshing and persisting the pair as needed.

    ``load`` returns the stored pair (it is called for every token so that a pair
    rotated by another run or instance is picked up); ``persist`` stores a new pair in
    one transaction and must return only once it is durable.
    """

    def __init__(
        self,
        auth: TikTokAuthClient,
        *,
        load: Callable[[], TokenPair | None],
        persist: Callable[[TokenPair], None],
        clock: Clock,
        refresh_margin_seconds: int = 300,
        store_name: str | None = None,
        interprocess: Callable[[], AbstractContextManager[object]] = nullcontext,
    ) -> None:
        self._auth = auth
        self._load = load
        self._persist = persist
        self._clock = clock
        self._margin = refresh_margin_seconds
        self._store_name = store_name
        self._lock = threading.Lock()
        # Held around "re-read, refresh, persist" so that other processes sharing the
        # database (the service, `check`, `connect`) never spend one refresh token twice.
        self._interprocess = interprocess

    def access_token(self) -> str:
        """A valid access token; refreshes first when it expired or expires soon."""
        pair = self._current()
        if self._expiring(pair):
            pair = self.refresh(stale_access_token=pair.access_token)
        return pair.access_token

    def refresh(self, *, stale_access_token: str | None = None) -> TokenPair:
        """Rotate the pair through the token host and persist it before returning it.

        Args:
            stale_access_token: the token a caller saw rejected or expiring. When the
                stored token is already a different, fresh one (another run refreshed
                meanwhile), that one is returned and nothing is sent.

        Raises:
            AuthError: ``refreshable=False`` when the seller must re-authorize (the
                refresh token expired or was revoked); the hint names the command.
        """
        with self._lock, self._interprocess():
            pair = self._current()
            if (
                stale_access_token is not None
                and pair.access_token != stale_access_token
                and not self._expiring(pair)
            ):
                return pair
            try:
                grant = self._auth.refresh(pair.refresh_token)
            except AuthError as exc:
                raise self._reauthorize(pair, exc) from None
            except FatalApiError as exc:
                if "revok" in exc.message.lower() or "expired" in exc.message.lower():
                    raise self._reauthorize(pair, exc) from None
                raise
            new_pair = pair_from_grant(grant)
            # Persist before use: the old refresh token is dead from now on.
            self._persist(new_pair)
            log.info(
                "tiktok.token.refreshed",
                access_token_expire_at=new_pair.access_token_expire_at,
                refresh_token_expire_at=new_pair.refresh_token_expire_at,
            )
            return new_pair

    def _current(self) -> TokenPair:
        pair = self._load()
        if pair is None or not pair.refresh_token:
            raise AuthError(
                "no TikTok tokens stored for this store",
                platform=envelope.PLATFORM,
                refreshable=False,
                hint=self._hint(
                    "set access_token and refresh_token in the store's config, or run "
                    f"`{envelope.CONNECT_COMMAND}`"
                ),
            )
        if pair.auth_status == "reauthorize":
            raise AuthError(
                f"TikTok authorization lost: {pair.auth_error or 'refresh refused'}",
                platform=envelope.PLATFORM,
                refreshable=False,
                hint=self._hint(envelope.REAUTHORIZE_HINT),
            )
        return pair

    def _expiring(self, pair: TokenPair) -> bool:
        if pair.access_token_expire_at is None:
            # A seed from the config has no known expiry; a 105002 reply refreshes it.
            return not pair.access_token
        now = to_epoch(self._clock.now())
        return now + self._margin >= pair.access_token_expire_at

    def _reauthorize(self, pair: TokenPair, exc: ApiError) -> AuthError:
        """Remember the dead pair (so runs stop calling the token host); explain."""
        reason = f"{exc.message} (code {exc.code})" if exc.code else exc.message
        self._persist(
            TokenPair(
                access_token=pair.access_token,
                refresh_token=pair.refresh_token,
                access_token_expire_at=pair.access_token_expire_at,
                refresh_token_expire_at=pair.refresh_token_expire_at,
                auth_status="reauthorize",
                auth_error=reason,
            )
        )
        log.error(
            "tiktok.token.refresh_refused", code=exc.code, request_id=exc.request_id
        )
        return AuthError(
            f"TikTok refused the token refresh: {exc.message}",
            platform=envelope.PLATFORM,
            status=exc.status,
            code=exc.code,
            request_id=exc.request_id,
            refreshable=False,
            hint=self._hint(envelope.REAUTHORIZE_HINT),
        )

    def _hint(self, text: str) -> str:
        if self._store_name:
            return text.replace("--store NAME", f"--store {self._store_name}")
        return text
