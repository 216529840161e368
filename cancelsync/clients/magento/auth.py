"""Magento request authentication: OAuth 1.0a (``oauth1``, the default) or bearer.

``oauth1`` signs every request with the integration's four credentials using HMAC-SHA256
(2.4.4+ refuses HMAC-SHA1). Only the URL, the query and the ``oauth_*`` parameters are
signed: a JSON body is neither signed nor hashed (no ``oauth_body_hash``), which is what
Magento verifies. ``requests_oauthlib.OAuth1`` does exactly that as long as the request
carries ``Content-Type: application/json``, which the client always sets on bodies.

``bearer`` sends the integration access token as ``Authorization: Bearer``; on 2.4.4+ it
only works when the store sets ``oauth/consumer/enable_integration_as_bearer = 1``.
"""

from __future__ import annotations

import requests
from requests_oauthlib import OAuth1

from cancelsync.config import MagentoConfig

AUTH_MODES = ("oauth1", "bearer")


class BearerAuth(requests.auth.AuthBase):
    """``Authorization: Bearer <token>``; the token never appears in ``repr``."""

    def __init__(self, token: str) -> None:
        if not token:
            raise ValueError("a bearer token is required")
        self._token = token

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = f"Bearer {self._token}"
        return r

    def __repr__(self) -> str:
        return "BearerAuth(token=***)"


def oauth1_auth(
    consumer_key: str,
    consumer_secret: str,
    access_token: str,
    access_token_secret: str,
) -> requests.auth.AuthBase:
    """OAuth 1.0a HMAC-SHA256 signer for an integration (JSON bodies unsigned)."""
    missing = [
        name
        for name, value in (
            ("consumer_key", consumer_key),
            ("consumer_secret", consumer_secret),
            ("access_token", access_token),
            ("access_token_secret", access_token_secret),
        )
        if not value
    ]
    if missing:
        raise ValueError(f"oauth1 needs {', '.join(missing)}")
    auth: requests.auth.AuthBase = OAuth1(
        consumer_key,
        client_secret=consumer_secret,
        resource_owner_key=access_token,
        resource_owner_secret=access_token_secret,
        signature_method="HMAC-SHA256",
        signature_type="AUTH_HEADER",
    )
    return auth


def auth_mode_of(auth: requests.auth.AuthBase) -> str:
    """``"bearer"`` for ``BearerAuth``, ``"oauth1"`` otherwise."""
    return "bearer" if isinstance(auth, BearerAuth) else "oauth1"


def auth_from_config(cfg: MagentoConfig) -> requests.auth.AuthBase:
    """The signer for ``cfg.auth`` (``oauth1`` or ``bearer``)."""
    if cfg.auth == "bearer":
        return BearerAuth(cfg.token)
    if cfg.auth == "oauth1":
        return oauth1_auth(
            cfg.consumer_key,
            cfg.consumer_secret,
            cfg.access_token,
            cfg.access_token_secret,
        )
    raise ValueError(f"unknown magento auth mode {cfg.auth!r}; use one of {AUTH_MODES}")
