"""Magento's REST error envelope → cancelsync's error tree, with the fix as a hint.

Magento answers ``{"message": template, "parameters": [...] | {...}}`` with the template
untranslated, so placeholders (``%1`` from a list, ``%name`` from a dict) are filled
here. Statuses map by what the caller must do: 401 ``AuthError`` (the bearer-flag or ACL
hint), 404 ``NotFoundError``, 429/5xx ``RetryableApiError``, a refund refusal meaning
"nothing left to refund" ``AlreadyAppliedError``, anything else ``FatalApiError``.

A body that is not JSON comes from whatever stands in front of Magento: nginx's HTML 502, a
maintenance page (503), a WAF, a captive portal answering HTTP 200, or PHP notices printed
before the JSON. Its text is quoted, shortened, in the message. A 2xx whose body is not JSON
is ``RetryableApiError`` as well: nothing about the order or memo is wrong, so it must not
become an attention item, and a write answered that way may have reached Magento or not
(the transport makes it an unknown outcome; the engine re-reads before sending again).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import requests

from cancelsync.clients.http import parse_retry_after
from cancelsync.errors import (
    AlreadyAppliedError,
    AuthError,
    FatalApiError,
    NotFoundError,
    RetryableApiError,
)

PLATFORM = "magento"

BEARER_HINT = (
    "on Magento 2.4.4+ an integration access token only works as a bearer token when "
    '"Allow OAuth Access Tokens to be used as standalone Bearer tokens" is Yes '
    "(Stores > Configuration > Services > OAuth > Consumer Settings, "
    'oauth/consumer/enable_integration_as_bearer=1); otherwise set auth = "oauth1" '
    "with the integration's consumer key/secret and access token/secret. Also check "
    "the token is current (re-authorizing an integration issues new tokens)"
)
OAUTH1_SIGNATURE_HINT = (
    "check consumer_key, consumer_secret, access_token and access_token_secret "
    "against the integration (System > Extensions > Integrations), and that base_url "
    "uses the scheme and host Magento sees (a proxy that rewrites them breaks OAuth "
    "signatures)"
)
ROUTE_HINT = (
    "check magento.base_url and magento.store_code (an unknown store code makes every "
    "route unknown)"
)

_ALREADY_APPLIED = re.compile(
    r"status of (closed|canceled)\b"
    r"|does not allow a creditmemo"
    r"|we can.t create creditmemo for the order",
    re.IGNORECASE,
)
_MONEY_LEFT = re.compile(
    r"most money available to refund is\s*[^\d\s-]{0,3}\s*(-?[\d.,]*\d)", re.IGNORECASE
)
_PLACEHOLDER = re.compile(r"%(\w+)")


class MagentoAuthError(AuthError):
    """A Magento 401; ``resources`` lists the ACL resources Magento named, if any."""

    def __init__(
        self,
        message: str,
        *,
        resources: tuple[str, ...] = (),
        status: int | None = None,
        code: int | str | None = None,
        request_id: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.resources = resources
        super().__init__(
            message,
            platform=PLATFORM,
            status=status,
            code=code,
            request_id=request_id,
            hint=hint,
        )


def fill_placeholders(message: str, parameters: Any) -> str:
    """Fill ``%1, %2…`` from a list or ``%name`` from a dict; unknown ones stay."""
    if isinstance(parameters, list):
        values = {str(i + 1): v for i, v in enumerate(parameters)}
    elif isinstance(parameters, Mapping):
        values = {str(k): v for k, v in parameters.items()}
    else:
        return message

    def sub(m: re.Match[str]) -> str:
        key = m.group(1)
        if key not in values:
            return m.group(0)
        value = values[key]
        if isinstance(value, list | tuple):
            return ", ".join(str(v) for v in value)
        return str(value)

    return _PLACEHOLDER.sub(sub, message)


def is_already_applied(message: str) -> bool:
    """True when a refund refusal means "already refunded / nothing left / closed"."""
    if _ALREADY_APPLIED.search(message):
        return True
    m = _MONEY_LEFT.search(message)
    if m is None:
        return False
    try:
        return Decimal(m.group(1).replace(",", "")) <= 0
    except InvalidOperation:
        return False


def snippet(text: str, limit: int = 120) -> str:
    """``text`` with whitespace collapsed, cut to ``limit`` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _one_line(text: str) -> str:
    return text.strip().replace(":\n", ": ").replace("\n", "; ")


def _resource_list(parameters: Any) -> tuple[str, ...]:
    if not isinstance(parameters, Mapping):
        return ()
    value = parameters.get("resources")
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list | tuple):
        return ()
    return tuple(s for s in (str(v).strip() for v in value) if s)


def raise_for_response(resp: requests.Response, *, auth_mode: str) -> None:
    """Raise the error class matching a Magento error response; return on success.

    401 → ``AuthError`` (with a bearer-flag or ACL hint), 404 →
    ``NotFoundError``, 429/5xx → ``RetryableApiError`` (``Retry-After`` honoured),
    a refund 400 meaning "nothing left to refund / closed / canceled" →
    ``AlreadyAppliedError``, any other status ≥ 300 → ``FatalApiError``.
    """
    status = resp.status_code
    if status < 300:
        _raise_unless_json(resp)
        return
    message, parameters, code = _error_envelope(resp)
    request_id = resp.headers.get("X-Request-Id")
    if status == 401:
        raise MagentoAuthError(
            message,
            resources=_resource_list(parameters),
            status=status,
            code=code,
            request_id=request_id,
            hint=_auth_hint(parameters, auth_mode),
        )
    if status == 404:
        route = "does not match any route" in message.lower()
        raise NotFoundError(
            message,
            platform=PLATFORM,
            status=status,
            code=code,
            request_id=request_id,
            hint=ROUTE_HINT if route else None,
        )
    if status == 429 or status >= 500:
        raise RetryableApiError(
            message,
            retry_after=parse_retry_after(resp.headers.get("Retry-After")),
            platform=PLATFORM,
            status=status,
            code=code,
            request_id=request_id,
        )
    if status == 400 and is_already_applied(message):
        raise AlreadyAppliedError(
            message,
            platform=PLATFORM,
            status=status,
            code=code,
            request_id=request_id,
            hint="Magento has nothing left to refund on this order; cancelsync "
            "re-reads the order before treating the refund as done",
        )
    hint = None
    if resp.history:
        hint = (
            f"the request was redirected to {resp.url.split('?')[0]}; set "
            "magento.base_url to the final URL (redirects turn POSTs into GETs)"
        )
    elif status == 403:
        hint = "grant the integration the API resource this call needs"
    raise FatalApiError(
        message,
        platform=PLATFORM,
        status=status,
        code=code,
        request_id=request_id,
        hint=hint,
    )


def _raise_unless_json(resp: requests.Response) -> None:
    """A 2xx whose body is not JSON did not come from Magento's API alone: transient."""
    try:
        resp.json()
    except ValueError:
        content_type = resp.headers.get("Content-Type") or "no content type"
        raise RetryableApiError(
            f"HTTP {resp.status_code} reply is not JSON ({content_type}): "
            f"{snippet(resp.text or '')!r}",
            platform=PLATFORM,
            status=resp.status_code,
            request_id=resp.headers.get("X-Request-Id"),
            hint="a proxy, captive portal or maintenance page answered instead of "
            "Magento, or PHP printed notices before the JSON (set display_errors off); "
            "cancelsync retries. If it lasts, check magento.base_url and the host's "
            "network",
        ) from None


def _error_envelope(resp: requests.Response) -> tuple[str, Any, int | str | None]:
    try:
        body = resp.json()
    except ValueError:
        short = snippet(resp.text or "")
        text = f"HTTP {resp.status_code} with a non-JSON body"
        return (f"{text}: {short!r}" if short else text), None, None
    if not isinstance(body, Mapping) or not isinstance(body.get("message"), str):
        return f"HTTP {resp.status_code}: {snippet(json.dumps(body))}", None, None
    parameters = body.get("parameters")
    message = _one_line(fill_placeholders(body["message"], parameters))
    extra = [
        _one_line(fill_placeholders(e["message"], e.get("parameters")))
        for e in body.get("errors") or ()
        if isinstance(e, Mapping) and isinstance(e.get("message"), str)
    ]
    extra = [e for e in extra if e not in message]
    if extra:
        message = "; ".join([message, *extra])
    code = body.get("code")
    return message, parameters, code if isinstance(code, int | str) else None


def _auth_hint(parameters: Any, auth_mode: str) -> str:
    resources = ", ".join(_resource_list(parameters))
    if auth_mode == "bearer":
        if resources:
            return (
                f"{BEARER_HINT}. If the flag is already on, grant the integration "
                f"these API resources: {resources}"
            )
        return BEARER_HINT
    if resources:
        return (
            f"grant the integration these API resources: {resources} (System > "
            "Extensions > Integrations > Edit > API), then save and re-authorize it"
        )
    return OAUTH1_SIGNATURE_HINT
