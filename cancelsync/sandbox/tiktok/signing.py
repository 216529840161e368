"""Request and webhook signature checks of the TikTok simulator (reference §2, §7).

Written from the reference text, not from any client: the sandbox must catch a client
that signs the wrong bytes, so it cannot share the client's signer.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

# Never part of the string to sign, even when a client sends them on the URL.
EXCLUDED_PARAMS = frozenset({"sign", "access_token"})


def string_to_sign(
    app_secret: str,
    path: str,
    params: Iterable[tuple[str, str]],
    body: bytes | None = None,
    content_type: str | None = None,
) -> bytes:
    """The bytes that get HMAC'd: secret + path + sorted k+v pairs + body + secret.

    Args:
        app_secret: the app's secret (wraps the message and keys the HMAC).
        path: the request path, no host and no query.
        params: decoded query pairs; ``sign`` and ``access_token`` are dropped.
        body: the body bytes exactly as sent, or ``None`` for no body.
        content_type: the request's Content-Type; a multipart body is not signed.
    """
    kept = [(k, v) for k, v in params if k not in EXCLUDED_PARAMS]
    # sorted() is stable, so repeated keys keep their order on the URL.
    kept.sort(key=lambda kv: kv[0].encode("utf-8"))
    parts = [path.encode("utf-8")]
    parts.extend((k + v).encode("utf-8") for k, v in kept)
    if body and not _is_multipart(content_type):
        parts.append(body)
    secret = app_secret.encode("utf-8")
    return secret + b"".join(parts) + secret


def compute_sign(
    app_secret: str,
    path: str,
    params: Iterable[tuple[str, str]],
    body: bytes | None = None,
    content_type: str | None = None,
) -> str:
    """Lowercase hex HMAC-SHA256 (key ``app_secret``) of ``string_to_sign``."""
    message = string_to_sign(app_secret, path, params, body, content_type)
    return hmac.new(app_secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def verify_sign(
    app_secret: str,
    path: str,
    params: Iterable[tuple[str, str]],
    body: bytes | None,
    content_type: str | None,
    sign: str,
) -> bool:
    """Whether ``sign`` matches, compared in constant time."""
    expected = compute_sign(app_secret, path, params, body, content_type)
    return hmac.compare_digest(expected, sign)


def webhook_signature(app_key: str, app_secret: str, body: bytes) -> str:
    """The ``Authorization`` header TikTok puts on a webhook: HMAC(app_key + body)."""
    message = app_key.encode("utf-8") + body
    return hmac.new(app_secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def verify_webhook(
    app_key: str, app_secret: str, body: bytes, authorization: str
) -> bool:
    """Whether a webhook's ``Authorization`` header matches its raw body."""
    return hmac.compare_digest(
        webhook_signature(app_key, app_secret, body), authorization
    )


def _is_multipart(content_type: str | None) -> bool:
    return content_type is not None and content_type.lower().startswith(
        "multipart/form-data"
    )
