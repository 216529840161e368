"""TikTok's reply envelope and its error codes → cancelsync's error tree.

Every reply is ``{"code", "message", "request_id", "data"}`` and ``code == 0`` means
success. Business errors usually ride on HTTP 200, while throttling, server and some
auth/sign errors arrive with a non-2xx status, so ``raise_for_response`` looks at both
(reference §5.7 and §6). Errors are typed by what the caller must do and carry the HTTP
status, the TikTok code, its message and the request id.

10006402 "Internal error. Please try again" is not in the reference: it was seen on order
detail (issue 8) and a third-party copy of docv2's Get Package Detail lists it as "Internal
error. Retry request", so it is retried like 36009003. Transient codes are
``RetryableApiError`` here; on a write the transport turns them into ``OutcomeUnknownError``.

A reply that is not JSON at all came from something in front of TikTok: a proxy's HTML error
page (a 502 is retried like any 5xx) or, with HTTP 200, a captive portal or a maintenance
page. That 200 is retryable too: nothing about the event is wrong, and a write answered
that way may or may not have reached TikTok (the transport makes it an unknown outcome, so
the engine re-reads before sending again).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests

from cancelsync.clients.http import parse_retry_after
from cancelsync.errors import (
    AlreadyAppliedError,
    ApiError,
    AuthError,
    ConfigApiError,
    FatalApiError,
    NotCancellableError,
    NotFoundError,
    RetryableApiError,
)

PLATFORM = "tiktok"

# Common codes (reference §6)
ACCESS_TOKEN_EXPIRED = 105002
INVALID_ACCESS_TOKEN = 101000
SCOPE_NOT_GRANTED = 105005
INVALID_SIGN = 106001
SHOP_CIPHER_MISSING = 106013
REFRESH_TOKEN_EXPIRED = 36004001
INVALID_AUTH_CODE = 36004004
TOO_MANY_REQUESTS = 36009002
INTERNAL_ERROR = 36009003
INVALID_PARAMS = 36009004
REQUEST_TIMED_OUT = 36009007
BAD_PATH = 36009009
BAD_METHOD = 36009010
BAD_VERSION = 36009014
IP_NOT_ALLOWED = 36009033
TRY_AGAIN = 10006402  # "Internal error. Please try again" (see the module docstring)
# Cancel Order codes (reference §5.7)
CANCEL_INVALID_PARAM = 25001001
CANCEL_IN_PROGRESS = 25001011
REASON_UNKNOWN = 25001014
REASON_NOT_FOR_SELLER = 25001015
REASON_RETIRED = 25001020
REASON_STATUS_MISMATCH = 25001021
REVERSE_LOCK_FAILED = 25001028
ALREADY_SHIPPED = 25001045
RISK_CONTROL = 25001046
ORDER_CLOSED = 25001051
LINES_NOT_CANCELLABLE = 25005010
TOO_MANY_LINES = 25005011
NO_PERMISSION = 25020005

CONNECT_COMMAND = "cancelsync connect --store NAME --auth-code CODE"
REAUTHORIZE_HINT = (
    "the seller must authorize the app again in TikTok Shop (the consent page from "
    f"Partner Center), then run `{CONNECT_COMMAND}` with the new code"
)
_REASONS_HINT = (
    "set stores.magento_refund_to_tiktok_cancel.cancel_reason to a seller reason key "
    "TikTok accepts for this market; `cancelsync reasons --store NAME` lists them"
)
_RE_READ_HINT = "cancelsync re-reads the order; a cancelled order counts as done"
_SELLER_CENTER_HINT = (
    "TikTok will not cancel this order any more; handle it as a return/refund in "
    "Seller Center"
)

_RETRYABLE: Mapping[int, str] = {
    TOO_MANY_REQUESTS: "TikTok is throttling this app; cancelsync backs off",
    INTERNAL_ERROR: "a TikTok internal error; cancelsync backs off and retries",
    TRY_AGAIN: "a transient TikTok error; cancelsync backs off and retries",
    REQUEST_TIMED_OUT: "TikTok timed out; reads are retried, writes are re-read first",
    REVERSE_LOCK_FAILED: "TikTok could not lock the order; cancelsync re-reads it and "
    "only then tries again",
}
_REAUTHORIZE: Mapping[int, str] = {
    INVALID_ACCESS_TOKEN: "the access token is not valid for this app; "
    + REAUTHORIZE_HINT,
    REFRESH_TOKEN_EXPIRED: "the refresh token expired or the seller revoked the app; "
    + REAUTHORIZE_HINT,
    INVALID_AUTH_CODE: "the auth code is wrong, already used or expired (codes last "
    f"about 30 min); get a new one from the consent page and run `{CONNECT_COMMAND}`",
}
_CONFIG: Mapping[int, str] = {
    SCOPE_NOT_GRANTED: "grant the scopes seller.authorization.info, seller.order.info "
    "and seller.return_refund.basic to the app in Partner Center, then have the seller "
    "authorize it again",
    IP_NOT_ALLOWED: "add this host's public IP address to the app's IP allow list in "
    "Partner Center",
    NO_PERMISSION: "the app has no permission for this operation on this shop; check "
    "its scopes and the shop's authorization in Partner Center",
    REASON_UNKNOWN: _REASONS_HINT,
    REASON_NOT_FOR_SELLER: _REASONS_HINT,
    REASON_RETIRED: _REASONS_HINT,
    REASON_STATUS_MISMATCH: "pick the reason key for the order status (unpaid orders "
    "need a seller_cancel_unpaid_* key, paid ones a paid key) or configure a reason "
    "family; see `cancelsync reasons --store NAME`",
}
_FATAL: Mapping[int, str] = {
    INVALID_SIGN: "TikTok rejected the signature: check that the store's app_secret "
    "belongs to its app_key and that the host clock is right; otherwise it is a "
    "cancelsync bug, please report it",
    SHOP_CIPHER_MISSING: "a shop call went out without shop_cipher: set shop_id or "
    "shop_cipher, or run `cancelsync connect`; otherwise it is a cancelsync bug",
    CANCEL_INVALID_PARAM: "TikTok says a parameter or the order status is invalid; "
    "check the order in Seller Center",
    BAD_PATH: "TikTok does not know this API path or version (a cancelsync bug or a "
    "retired API version)",
    BAD_METHOD: "TikTok does not accept this HTTP method here (a cancelsync bug)",
    BAD_VERSION: "TikTok does not serve this API version any more; upgrade cancelsync",
}
_NOT_CANCELLABLE: Mapping[int, str] = {
    ALREADY_SHIPPED: "the order has shipped; " + _SELLER_CENTER_HINT,
    RISK_CONTROL: "TikTok's risk control blocked the cancel; " + _SELLER_CENTER_HINT,
    LINES_NOT_CANCELLABLE: "these lines cannot be cancelled; " + _SELLER_CENTER_HINT,
    TOO_MANY_LINES: "too many lines in one cancel; " + _SELLER_CENTER_HINT,
}
_ALREADY_APPLIED: Mapping[int, str] = {
    ORDER_CLOSED: _RE_READ_HINT,
    CANCEL_IN_PROGRESS: _RE_READ_HINT,
}


def parse_envelope(resp: requests.Response) -> Mapping[str, Any] | None:
    """The reply as a JSON object, or ``None`` when it is not one."""
    try:
        payload = resp.json()
    except ValueError:
        return None
    return payload if isinstance(payload, Mapping) else None


def _code(envelope: Mapping[str, Any] | None) -> int | None:
    if envelope is None:
        return None
    raw = envelope.get("code")
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, str):
        digits = raw.strip().removeprefix("-")
        if digits.isascii() and digits.isdigit():
            return int(raw)
    return None


def _snippet(text: str | None, limit: int = 120) -> str:
    """A reply's text with whitespace collapsed, cut to ``limit`` characters."""
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def raise_for_response(resp: requests.Response) -> None:
    """Raise the ``ApiError`` subclass a TikTok reply calls for; return on success.

    Checks the HTTP status *and* the envelope ``code``: throttling is HTTP 429 or code
    36009002 (``Retry-After`` honoured), server errors are 5xx or 36009003.
    """
    envelope = parse_envelope(resp)
    code = _code(envelope)
    status = resp.status_code
    message = ""
    request_id = resp.headers.get("x-tt-logid")
    if envelope is not None:
        message = str(envelope.get("message") or "")
        request_id = str(envelope.get("request_id") or "") or request_id
    if 200 <= status < 300 and code == 0:
        return
    kw: dict[str, Any] = {
        "platform": PLATFORM,
        "status": status,
        "code": code,
        "request_id": request_id,
    }
    text = message or f"HTTP {status}"
    retry_after = parse_retry_after(resp.headers.get("Retry-After"))
    if status == 429 or code == TOO_MANY_REQUESTS:
        raise RetryableApiError(
            text, retry_after=retry_after, hint=_RETRYABLE[TOO_MANY_REQUESTS], **kw
        )
    if status >= 500:
        # The server failed; whatever code it sent, the request may be retried (and a
        # write becomes an unknown outcome in the transport).
        raise RetryableApiError(
            text, retry_after=retry_after, hint=_RETRYABLE[INTERNAL_ERROR], **kw
        )
    if envelope is None and 200 <= status < 300:
        raise RetryableApiError(
            f"HTTP {status} reply is not TikTok's JSON "
            f"({resp.headers.get('Content-Type', 'no content type')}): "
            f"{_snippet(resp.text)!r}",
            retry_after=retry_after,
            hint="a proxy, captive portal or maintenance page answered instead of "
            "TikTok; cancelsync retries. If it lasts, check the host's network and "
            "tiktok.api_base_url",
            **kw,
        )
    if code is None or code == 0:
        raise _without_code(resp, status, envelope, text, kw)
    raise error_for_code(
        code,
        text,
        retry_after=retry_after,
        status=status,
        request_id=request_id,
    )


def error_for_code(
    code: int,
    message: str,
    *,
    retry_after: float | None = None,
    status: int | None = None,
    request_id: str | None = None,
) -> ApiError:
    """The error a non-zero TikTok ``code`` calls for."""
    kw: dict[str, Any] = {
        "platform": PLATFORM,
        "status": status,
        "code": code,
        "request_id": request_id,
    }
    if code in _RETRYABLE:
        return RetryableApiError(
            message, retry_after=retry_after, hint=_RETRYABLE[code], **kw
        )
    if code == ACCESS_TOKEN_EXPIRED:
        return AuthError(
            message,
            refreshable=True,
            hint="cancelsync refreshes the access token and retries once",
            **kw,
        )
    if code in _REAUTHORIZE:
        return AuthError(message, refreshable=False, hint=_REAUTHORIZE[code], **kw)
    if code in _CONFIG:
        return ConfigApiError(message, hint=_CONFIG[code], **kw)
    if code in _NOT_CANCELLABLE:
        return NotCancellableError(message, hint=_NOT_CANCELLABLE[code], **kw)
    if code in _ALREADY_APPLIED:
        return AlreadyAppliedError(message, hint=_ALREADY_APPLIED[code], **kw)
    if code == INVALID_PARAMS:
        return _invalid_params(message, kw)
    if code in _FATAL:
        return FatalApiError(message, hint=_FATAL[code], **kw)
    return FatalApiError(message, hint="see the TikTok message; not retried", **kw)


def _invalid_params(message: str, kw: dict[str, Any]) -> ApiError:
    """36009004 covers many faults; the message says which one (reference §6)."""
    lowered = message.lower()
    if "timestamp" in lowered:
        return ConfigApiError(
            message,
            hint="the host clock is off: TikTok accepts a timestamp at most 5 min old "
            "and 30 s ahead; sync the clock (NTP)",
            **kw,
        )
    if "shop_cipher" in lowered or "shop cipher" in lowered or "shop_id" in lowered:
        return ConfigApiError(
            message,
            hint="check the store's shop_id / shop_cipher (run `cancelsync connect` to "
            "look the cipher up again)",
            **kw,
        )
    if "app_key" in lowered or "app key" in lowered:
        return ConfigApiError(
            message,
            hint="check the store's app_key: it must be the Partner Center app's key",
            **kw,
        )
    return FatalApiError(
        message, hint="TikTok rejected a parameter (see the message); not retried", **kw
    )


def _without_code(
    resp: requests.Response,
    status: int,
    envelope: Mapping[str, Any] | None,
    text: str,
    kw: dict[str, Any],
) -> ApiError:
    """An error status with no TikTok code, or a 2xx that is not a TikTok envelope."""
    if status in (401, 403):
        return AuthError(text, refreshable=False, hint=REAUTHORIZE_HINT, **kw)
    if status == 404:
        return NotFoundError(
            text, hint="check tiktok.api_base_url and the API version", **kw
        )
    if envelope is None or "code" not in envelope:
        return FatalApiError(
            f"unreadable reply ({resp.headers.get('Content-Type', 'no content type')})",
            hint="check that tiktok.api_base_url points at the TikTok Shop Open API",
            **kw,
        )
    return FatalApiError(text, hint="see the TikTok message; not retried", **kw)
