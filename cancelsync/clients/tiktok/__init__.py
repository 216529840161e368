"""TikTok Shop Partner API client: signing, tokens, mapper, client and checks.

``TikTokClient`` is the one entry point for API calls; ``TokenManager`` with
``TikTokAuthClient`` keeps its access token valid; ``signing`` is pure and tested
against the reference vectors.
"""

from __future__ import annotations

from cancelsync.clients.tiktok.checks import check_tiktok
from cancelsync.clients.tiktok.client import ShopsProbe, TikTokClient
from cancelsync.clients.tiktok.envelope import raise_for_response
from cancelsync.clients.tiktok.signing import (
    sign_request,
    verify_webhook,
    webhook_signature,
)
from cancelsync.clients.tiktok.tokens import (
    TikTokAuthClient,
    TokenManager,
    pair_from_grant,
)

__all__ = [
    "ShopsProbe",
    "TikTokAuthClient",
    "TikTokClient",
    "TokenManager",
    "check_tiktok",
    "pair_from_grant",
    "raise_for_response",
    "sign_request",
    "verify_webhook",
    "webhook_signature",
]
