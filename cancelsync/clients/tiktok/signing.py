"""TikTok Shop request and webhook signatures (reference §2 and §7); pure functions.

The request sign is HMAC-SHA256 (key ``app_secret``) over
``app_secret + path + sorted(key + value) + body + app_secret``, as lowercase hex.
Query values are the *decoded* strings; ``sign`` and ``access_token`` never take part.
The body is the exact bytes sent, except for multipart uploads. Checked against every
vector in ``tiktok-signing-vectors.json``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

# Never signed, even when a client puts them on the URL.
UNSIGNED_PARAMS = frozenset({"sign", "access_token"})


def string_to_sign(
    app_secret: str,
    path: str,
    query: Mapping[str, str],
    body: bytes | None,
    content_type: str = "application/json",
) -> bytes:
    """The exact bytes the request sign is computed over.

    Args:
        app_secret: the app secret; it wraps the message.
        path: the request path without host or query (``/order/202309/orders``).
        query: every query param sent, decoded (``page_token`` unescaped).
        body: the body bytes exactly as sent, or ``None`` for no body.
        content_type: the request's Content-Type; a multipart body is not signed.
    """
    # Byte order, not locale order: TikTok sorts the raw keys.
    keys = sorted((k for k in query if k not in UNSIGNED_PARAMS), key=str.encode)
    parts = [path.encode()]
    parts.extend((key + str(query[key])).encode() for key in keys)
    if body and not content_type.lower().startswith("multipart/form-data"):
        parts.append(body)
    secret = app_secret.encode()
    return secret + b"".join(parts) + secret


def sign_request(
    app_secret: str,
    path: str,
    query: Mapping[str, str],
    body: bytes | None,
    content_type: str = "application/json",
) -> str:
    """The ``sign`` query param: lowercase hex HMAC-SHA256 of ``string_to_sign``."""
    message = string_to_sign(app_secret, path, query, body, content_type)
    return hmac.new(app_secret.encode(), message, hashlib.sha256).hexdigest()


def webhook_signature(app_key: str, app_secret: str, raw_body: bytes) -> str:
    """The ``Authorization`` header of a webhook: HMAC(app_key + raw body), hex."""
    message = app_key.encode() + raw_body
    return hmac.new(app_secret.encode(), message, hashlib.sha256).hexdigest()


def verify_webhook(
    app_key: str, app_secret: str, raw_body: bytes, authorization: str
) -> bool:
    """Whether a webhook's ``Authorization`` matches its raw body, in constant time.

    Pass the body bytes as received: re-serialised JSON would not match.
    """
    expected = webhook_signature(app_key, app_secret, raw_body)
    return hmac.compare_digest(
        expected.encode(), authorization.strip().lower().encode()
    )
