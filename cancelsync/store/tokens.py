"""Rotated TikTok tokens per store, and which config seed they came from.

TikTok's refresh returns a new access token *and* a new refresh token, and the old refresh
token stops working, so the pair is saved in one statement before it is used. The row remembers
a fingerprint of the config's seed pair: when the merchant re-authorizes and puts a new seed in
the config, that seed wins over the stored pair.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlite_utils import Database

from cancelsync.models import TokenPair as TokenPair  # re-exported (store.TokenPair)
from cancelsync.store.db import iso


def seed_fingerprint(access_token: str | None, refresh_token: str | None) -> str | None:
    """A one-way fingerprint of the config's seed pair (the tokens themselves stay out)."""
    if not access_token and not refresh_token:
        return None
    digest = hashlib.sha256(f"{access_token or ''}\0{refresh_token or ''}".encode())
    return digest.hexdigest()[:32]


class Tokens:
    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, token_scope: str) -> tuple[TokenPair, str | None] | None:
        """The stored pair and its seed fingerprint, or ``None``."""
        rows = list(
            self._db.query("SELECT * FROM tokens WHERE token_scope = ?", [token_scope])
        )
        if not rows:
            return None
        r = rows[0]
        pair = TokenPair(
            access_token=r["access_token"],
            refresh_token=r["refresh_token"],
            access_token_expire_at=r["access_token_expire_at"],
            refresh_token_expire_at=r["refresh_token_expire_at"],
            auth_status=r["auth_status"],
            auth_error=r["auth_error"],
        )
        return pair, r["seed_fingerprint"]

    def save(
        self, token_scope: str, pair: TokenPair, seed: str | None, now: datetime
    ) -> None:
        """Store both tokens at once (one statement is one transaction in SQLite)."""
        self._db.execute(
            """INSERT INTO tokens (token_scope, access_token, access_token_expire_at,
                 refresh_token, refresh_token_expire_at, seed_fingerprint, auth_status,
                 auth_error, updated_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (token_scope) DO UPDATE SET
                 access_token = excluded.access_token,
                 access_token_expire_at = excluded.access_token_expire_at,
                 refresh_token = excluded.refresh_token,
                 refresh_token_expire_at = excluded.refresh_token_expire_at,
                 seed_fingerprint = excluded.seed_fingerprint,
                 auth_status = excluded.auth_status, auth_error = excluded.auth_error,
                 updated_at = excluded.updated_at""",
            [token_scope, pair.access_token, pair.access_token_expire_at, pair.refresh_token,
             pair.refresh_token_expire_at, seed, pair.auth_status, pair.auth_error, iso(now)],
        )  # fmt: skip

    def mark_auth_failed(self, token_scope: str, error: str, now: datetime) -> None:
        """Remember that the seller must re-authorize (shown by ``status``)."""
        self._db.execute(
            "UPDATE tokens SET auth_status = 'reauthorize', auth_error = ?, updated_at = ? "
            "WHERE token_scope = ?",
            [error, iso(now), token_scope],
        )

    def rename(self, old_scope: str, new_scope: str) -> None:
        """Re-key a provisional (store-name) row once the TikTok shop id is known."""
        if self.get(new_scope) is None:
            self._db.execute(
                "UPDATE tokens SET token_scope = ? WHERE token_scope = ?",
                [new_scope, old_scope],
            )
