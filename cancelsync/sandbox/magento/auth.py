"""Who is calling: OAuth 1.0a (HMAC-SHA256) verified for real, bearer tokens, anonymous.

The checks run in the order of Magento's ``Oauth::validateAccessTokenRequest()``
(version, required params, token length, signature method, consumer, nonce, token,
signature), so a bad request fails with the same message a 2.4 store gives. The nonce is
stored before the signature is checked, as Magento does, so a replay of a rejected
request is also refused. Whether bearer integration tokens count is decided per call by
the ``integration_bearer_enabled`` flag
(``oauth/consumer/enable_integration_as_bearer``).

The signed query parameters come from the raw query string, the way
``Framework\\Oauth\\Helper\\Request::_extractQueryStringParams`` reads them in 2.4:
split on ``&`` and ``=``, keep only ``name=value`` pairs (a value holding a raw ``=``
is dropped), skip protocol parameters, and decode both sides with PHP
``rawurldecode`` (``urllib.parse.unquote``), which keeps ``+`` a literal plus. A client
that encodes a space as ``+`` (``requests``' ``params=``) signs a space, Magento signs
``+``, and the call fails with 401 "The signature is invalid" (magento/magento2 PR
#34896, issue #37278; reference §1). Older releases decoded with ``urldecode``
(``+`` as a space); ``%20`` verifies on both. Only the signature check reads the query
this way: the REST layer's own parameters (``$_GET``, the search filters) still decode
``+`` as a space.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, unquote

from cancelsync.sandbox.common import SimRequest
from cancelsync.sandbox.magento.errors import (
    CONSUMER_KEY_LENGTH,
    CONSUMER_UNKNOWN,
    MULTIPLE_INPUT,
    NONCE_USED,
    NOT_AUTHORIZED,
    OAUTH_REQUIRED,
    OAUTH_VERSION,
    SIGNATURE_INVALID,
    SIGNATURE_METHOD,
    TOKEN_LENGTH,
    TOKEN_UNKNOWN,
    MagentoError,
    bad_request,
)

SUPPORTED_SIGNATURE_METHODS = ("HMAC-SHA256",)  # HMAC-SHA1 was dropped in 2.4.4
OAUTH_LENGTH = 32  # consumer keys, secrets and tokens are 32 characters
REQUIRED_OAUTH_PARAMS = (
    "oauth_consumer_key",
    "oauth_signature",
    "oauth_signature_method",
    "oauth_nonce",
    "oauth_timestamp",
    "oauth_token",
)
NONCE_ERROR = "An error occurred validating the nonce"
# Request::_isProtocolParameter(): an unanchored preg_match, so it matches anywhere.
_PROTOCOL_PARAM = re.compile(r"oauth_[a-z_-]+")


@dataclass(frozen=True)
class MagentoCredentials:
    """The one integration (and one admin token) the simulated store knows.

    The defaults are fake demo values of the real lengths (32 characters).
    """

    consumer_key: str = "sandboxconsumerkey00000000000001"
    consumer_secret: str = "sandboxconsumersecret00000000001"
    access_token: str = "sandboxaccesstoken00000000000001"
    access_token_secret: str = "sandboxtokensecret00000000000001"
    admin_token: str = "sandboxadmintoken000000000000001"
    consumer_id: int = 1


@dataclass(frozen=True)
class Caller:
    """The authenticated principal: ``admin``, ``integration`` or ``anonymous``."""

    kind: str
    resources: frozenset[str] | None = None  # None = every ACL resource

    def allows(self, resource: str) -> bool:
        if self.kind == "anonymous":
            return False
        return self.resources is None or resource in self.resources


ANONYMOUS = Caller("anonymous", frozenset())


def _enc(value: str) -> str:
    """RFC 3986 percent-encoding as OAuth 1.0a requires (unreserved chars kept)."""
    return quote(value, safe="~")


def signature_base_string(
    method: str, base_uri: str, params: Iterable[tuple[str, str]]
) -> str:
    """RFC 5849 §3.4.1: ``METHOD&enc(uri)&enc(sorted enc(k)=enc(v) joined by &)``."""
    pairs = sorted((_enc(k), _enc(v)) for k, v in params)
    normalized = "&".join(f"{k}={v}" for k, v in pairs)
    return "&".join((method.upper(), _enc(base_uri), _enc(normalized)))


def hmac_sha256_signature(
    base_string: str, consumer_secret: str, token_secret: str
) -> str:
    """Base64 HMAC-SHA256 with the key ``enc(consumer_secret)&enc(token_secret)``."""
    key = f"{_enc(consumer_secret)}&{_enc(token_secret)}".encode()
    digest = hmac.new(key, base_string.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def base_uri(scheme: str, host: str, raw_path: str) -> str:
    """``scheme://host + path`` with the default port dropped (RFC 5849 §3.4.1.2)."""
    host = host.lower()
    default = ":443" if scheme == "https" else ":80"
    if host.endswith(default):
        host = host[: -len(default)]
    return f"{scheme}://{host}{raw_path}"


def parse_oauth_header(value: str) -> dict[str, str]:
    """The decoded ``oauth_*`` parameters of an ``Authorization: OAuth`` header."""
    if value[:5].lower() != "oauth":
        return {}
    params: dict[str, str] = {}
    for part in value[5:].split(","):
        name, sep, raw = part.strip().partition("=")
        if not sep:
            continue
        name = unquote(name.strip())
        if name.startswith("oauth_"):
            params[name] = unquote(raw.strip().strip('"'))
    return params


class Authenticator:
    """Resolves the caller of each request against the configured credentials."""

    def __init__(
        self,
        credentials: MagentoCredentials,
        *,
        integration_resources: Iterable[str] | None = None,
        scheme: str = "http",
    ) -> None:
        self.credentials = credentials
        self.integration_resources = (
            None if integration_resources is None else frozenset(integration_resources)
        )
        self.scheme = scheme
        self._nonces: set[tuple[int, str]] = set()
        self._lock = threading.Lock()

    def authenticate(
        self, req: SimRequest, *, integration_bearer_enabled: bool
    ) -> Caller:
        """The caller; ``MagentoError`` when an OAuth request is malformed or forged."""
        header = req.headers.get("authorization", "").strip()
        if header[:7].lower() == "bearer ":
            return self._bearer(header[7:].strip(), integration_bearer_enabled)
        protocol = parse_oauth_header(header)
        for key, value in req.query:
            if key.startswith("oauth_"):
                protocol.setdefault(key, value)
        if not protocol:
            return ANONYMOUS
        self._verify_oauth(req, protocol)
        return Caller("integration", self.integration_resources)

    def _bearer(self, token: str, integration_bearer_enabled: bool) -> Caller:
        creds = self.credentials
        if hmac.compare_digest(token, creds.admin_token):
            return Caller("admin", None)
        if integration_bearer_enabled and hmac.compare_digest(
            token, creds.access_token
        ):
            return Caller("integration", self.integration_resources)
        # With the flag off the token is silently ignored: the caller is anonymous.
        return ANONYMOUS

    def _verify_oauth(self, req: SimRequest, protocol: dict[str, str]) -> None:
        creds = self.credentials
        version = protocol.get("oauth_version")
        if version is not None and version != "1.0":
            raise bad_request(OAUTH_VERSION, [version])
        missing = [p for p in REQUIRED_OAUTH_PARAMS if p not in protocol]
        if len(missing) == 1:
            raise bad_request(OAUTH_REQUIRED, {"fieldName": missing[0]})
        if missing:
            errors = [
                {"message": OAUTH_REQUIRED, "parameters": {"fieldName": name}}
                for name in missing
            ]
            raise MagentoError(400, MULTIPLE_INPUT, None, errors)
        if len(protocol["oauth_token"]) != OAUTH_LENGTH:
            raise bad_request(TOKEN_LENGTH)
        method = protocol["oauth_signature_method"]
        if method not in SUPPORTED_SIGNATURE_METHODS:
            raise bad_request(SIGNATURE_METHOD, [method])
        key = protocol["oauth_consumer_key"]
        if len(key) != OAUTH_LENGTH:
            raise MagentoError(401, CONSUMER_KEY_LENGTH)
        if not hmac.compare_digest(key, creds.consumer_key):
            raise MagentoError(401, CONSUMER_UNKNOWN)
        self._check_nonce(protocol["oauth_nonce"], protocol["oauth_timestamp"])
        if not hmac.compare_digest(protocol["oauth_token"], creds.access_token):
            raise MagentoError(401, TOKEN_UNKNOWN)
        expected = hmac_sha256_signature(
            signature_base_string(
                req.method,
                base_uri(self.scheme, req.host, req.raw_path),
                self._signed_params(req, protocol),
            ),
            creds.consumer_secret,
            creds.access_token_secret,
        )
        if not hmac.compare_digest(expected, protocol["oauth_signature"]):
            raise MagentoError(401, SIGNATURE_INVALID)

    def _check_nonce(self, nonce: str, timestamp: str) -> None:
        consumer_id = self.credentials.consumer_id
        try:
            ok = int(timestamp) > 0
        except ValueError:
            ok = False
        if not ok:
            raise MagentoError(401, NONCE_ERROR)
        with self._lock:
            if (consumer_id, nonce) in self._nonces:
                raise MagentoError(401, NONCE_USED, [str(consumer_id)])
            self._nonces.add((consumer_id, nonce))

    @staticmethod
    def _signed_params(
        req: SimRequest, protocol: dict[str, str]
    ) -> Sequence[tuple[str, str]]:
        params = [(k, v) for k, v in protocol.items() if k != "oauth_signature"]
        params += list(signed_query_params(req.raw_query).items())
        content_type = req.headers.get("content-type", "")
        if content_type.startswith("application/x-www-form-urlencoded") and req.body:
            form = parse_qsl(
                req.body.decode("utf-8", "replace"), keep_blank_values=True
            )
            params += [(k, v) for k, v in form if not k.startswith("oauth_")]
        return params


def signed_query_params(raw_query: str) -> dict[str, str]:
    """The query parameters Magento signs, read from the raw query (module docstring).

    A PHP array: a repeated name keeps its last value.
    """
    params: dict[str, str] = {}
    if not raw_query:
        return params
    for pair in raw_query.split("&"):
        parts = pair.split("=")
        if len(parts) != 2 or _PROTOCOL_PARAM.search(parts[0]):
            continue
        params[unquote(parts[0])] = unquote(parts[1])
    return params


def forbidden(resource: str) -> MagentoError:
    """The 401 for a missing grant, an unknown token or a disabled bearer token."""
    return MagentoError(401, NOT_AUTHORIZED, {"resources": resource})
