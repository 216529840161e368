"""The config's frozen dataclasses: every key, its type, its default and its check.

A field is a key of its TOML table (``source`` excepted). The loader takes the expected
TOML type from the annotation and the default from the field; a field without a default
is required. ``checked(default, check)`` attaches a check that returns a problem or None.
"""

from __future__ import annotations

import ipaddress
import re
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from cancelsync import reasons
from cancelsync.errors import ConfigError

T = TypeVar("T")
Check = Callable[[Any], str | None]

LOG_FORMATS = ("auto", "json", "console")
LOG_LEVELS = ("debug", "info", "warning", "error")
MAGENTO_AUTH_MODES = ("oauth1", "bearer")
PARTIAL_REFUND_MODES = ("report", "cancel_items")


def checked(default: T, check: Check) -> T:
    """A field with ``default`` whose value must pass ``check``."""
    return field(default=default, metadata={"check": check})


# --------------------------------------------------------------------------- checks


def positive(value: Any) -> str | None:
    return None if value > 0 else "must be greater than 0"


def not_negative(value: Any) -> str | None:
    return None if value >= 0 else "must not be negative"


def between(low: float, high: float, why_low: str = "") -> Check:
    """A number from ``low`` to ``high`` (NaN and infinities are neither); ``why_low`` says
    why the minimum matters."""

    def check(value: Any) -> str | None:
        if low <= value <= high:  # False for NaN
            return None
        if value < low and why_low:
            return f"must be at least {low:g}: {why_low}"
        return f"must be between {low:g} and {high:g}"

    return check


def http_url(value: Any) -> str | None:
    try:
        parts = urlsplit(value)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:  # an unclosed [IPv6 literal, a port out of range
        parts, port_ok = None, False
    if (
        parts is None
        or not port_ok
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or any(c.isspace() or not c.isprintable() for c in value)
    ):
        return f"{shown(value)} is not an http(s) URL"
    return None


def shown(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, for messages that quote a value."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def secret_http_url(value: Any) -> str | None:
    """An http(s) URL that carries a token: the problem never repeats the value."""
    if not value:
        return None  # empty: unset
    try:
        parts = urlsplit(value)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:  # e.g. an unclosed [IPv6 literal
        ok = False
    return None if ok else "must be an http(s) URL (not shown: it holds a token)"


def tcp_port(value: Any) -> str | None:
    return None if 1 <= value <= 65535 else f"{value} is not a port (1-65535)"


def split_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6; port 0: any free one) as ``(host, port)``;
    raises ValueError."""
    host, sep, port = value.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isascii() or not port.isdigit():
        raise ValueError(value)
    if int(port) > 65535 or any(c.isspace() or c in "/[]" for c in host):
        raise ValueError(value)
    return host, int(port)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a literal address or ``localhost``) is this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name other than localhost may resolve anywhere


def listen_address(value: Any) -> str | None:
    try:
        port = split_listen(value)[1]
    except ValueError:
        port = 0
    return None if port else f"{shown(value)} is not HOST:PORT (e.g. 127.0.0.1:8788)"


WEB_TOKEN_MIN_LENGTH = 16


def web_secret(value: Any) -> str | None:
    """The order center's token: long enough to resist guessing; never quoted back."""
    if not value:
        return None  # empty: unset (web_listen then reports it missing)
    if len(value) < WEB_TOKEN_MIN_LENGTH or any(c.isspace() for c in value):
        return (
            f"must be at least {WEB_TOKEN_MIN_LENGTH} characters without spaces (not "
            "shown: it is a secret); e.g. `openssl rand -hex 32`"
        )
    return None


# The placeholders a link template may use (values are URL-quoted when filled in).
MAGENTO_ORDER_URL_FIELDS = ("magento_entity_id", "magento_increment_id")
TIKTOK_ORDER_URL_FIELDS = ("tiktok_order_id", "tiktok_shop_id")


def link_template(names: tuple[str, ...]) -> Check:
    """An http(s) URL whose ``{placeholders}`` are among ``names``."""

    def check(value: Any) -> str | None:
        if not value:
            return None
        try:
            used = {
                f for _, f, _, _ in string.Formatter().parse(value) if f is not None
            }
        except ValueError:
            return f"{shown(value)}: unbalanced {{ }} in the template"
        unknown = sorted(used - set(names))
        if unknown:
            return f"unknown placeholder {{{unknown[0]}}}; use " + " or ".join(
                f"{{{n}}}" for n in names
            )
        return http_url(value.format_map(dict.fromkeys(names, "1")))

    return check


def web_token_missing(web_listen: str) -> str:
    """The problem of a ``web_listen`` without ``web_token``."""
    try:
        exposed = not is_loopback(split_listen(web_listen)[0])
    except ValueError:
        exposed = False
    where = (
        f"{web_listen} is not a loopback address: anyone who reaches it could move money"
        if exposed
        else "every page and API call signs in with it"
    )
    return (
        f"worker.web_token: required with web_listen ({where}); set web_token = "
        '"${CANCELSYNC_WEB_TOKEN}" (or ${file:PATH} / ${credential:NAME})'
    )


def one_of(options: tuple[str, ...]) -> Check:
    def check(value: Any) -> str | None:
        return None if value in options else f"must be one of {', '.join(options)}"

    return check


def column_name(value: Any) -> str | None:
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
        return None
    return f"{shown(value)} is not a column name"


def safe_name(value: Any) -> str | None:
    if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", value):
        return None
    return f"use letters, digits, '-', '_' or '.' ({shown(value)})"


def known_reason(value: Any) -> str | None:
    if reasons.is_known_reason(value):
        return None
    families = ", ".join(sorted(reasons.FAMILIES))
    return (
        f"unknown cancel reason {shown(value)}; use a TikTok seller reason key "
        f"(see `cancelsync reasons`) or a family: {families}"
    )


def known_market(value: Any) -> str | None:
    if reasons.normalize_market(value) in reasons.MARKETS:
        return None
    return f"unknown market {shown(value)}; use one of {', '.join(sorted(reasons.MARKETS))}"


# --------------------------------------------------------------------------- tables

# Why the overlap has a floor: a cursor is the newest update time seen, so events stamped in
# the cycle's own last second, or committed late (Magento stamps a row when its transaction
# starts), are only found again by reading back behind it.
OVERLAP_WHY = (
    "shorter windows lose events stamped in the cycle's own last second and rows "
    "committed late (Magento stamps them when their transaction starts)"
)
MAGENTO_STORE_ID_MAX = 65_535  # Magento's store_id is a SMALLINT UNSIGNED


@dataclass(frozen=True)
class WorkerConfig:
    database: Path = Path("cancelsync.db")  # relative to the config file's folder
    poll_interval_seconds: int = checked(60, between(1, 86_400))
    overlap_seconds: int = checked(300, between(30, 86_400, OVERLAP_WHY))
    first_run_lookback_hours: int = checked(24, between(0, 8_760))
    # A TikTok cancellation whose order is not in Magento yet is looked up again every
    # cycle for this long (the importer may bring it over late); 0 turns that off.
    import_wait_hours: int = checked(24, between(0, 720))
    log_format: str = checked("auto", one_of(LOG_FORMATS))
    log_level: str = checked("info", one_of(LOG_LEVELS))
    stores_dir: Path | None = None
    max_attempts: int = checked(5, between(1, 100))
    retry_backoff_seconds: int = checked(60, between(0, 3_600))
    # Writes in flight at once per store (actions of one order stay in order).
    max_in_flight: int = checked(4, between(1, 32))
    # Direction B's order-search cross-check runs this often (0: every cycle).
    cross_check_interval_seconds: int = checked(3_600, between(0, 86_400))
    # Timeline (explain) and cycle history (status) older than this is pruned once a
    # day; never ledger rows, links, cursors or tokens.
    history_days: int = checked(90, between(7, 3_650))
    # Service mode: Prometheus /metrics and /healthz on 127.0.0.1 (off when unset).
    metrics_port: int | None = checked(None, tcp_port)
    # A JSON POST {"text": ...} per new needs-attention item and per failing/recovered
    # store (off when unset). A secret: the URL carries the hook's token.
    alert_webhook_url: str | None = checked(None, secret_http_url)
    # Service mode: the order center (web pages + JSON API) on HOST:PORT, off when unset;
    # web_token is its sign-in secret, required with it. Links to the merchant's admin
    # pages are made from the two templates (optional).
    web_listen: str | None = checked(None, listen_address)
    # Service mode: receive TikTok webhooks at POST /tiktok/webhook on HOST:PORT (behind
    # the merchant's HTTPS proxy); a delivery wakes its store's cycle. Off when unset.
    webhook_listen: str | None = checked(None, listen_address)
    web_token: str | None = checked(None, web_secret)
    magento_admin_order_url: str | None = checked(
        None, link_template(MAGENTO_ORDER_URL_FIELDS)
    )
    tiktok_order_url: str | None = checked(None, link_template(TIKTOK_ORDER_URL_FIELDS))

    def secrets(self) -> list[str]:
        return [self.alert_webhook_url or "", self.web_token or ""]


@dataclass(frozen=True)
class MagentoConfig:
    base_url: str = field(metadata={"check": http_url})
    store_code: str = "all"
    auth: str = checked("oauth1", one_of(MAGENTO_AUTH_MODES))
    # Required by ``auth``: the four OAuth 1.0a values, or ``token`` for bearer.
    consumer_key: str = ""
    consumer_secret: str = ""
    access_token: str = ""
    access_token_secret: str = ""
    token: str = ""
    tiktok_order_id_field: str = checked("ext_order_id", column_name)
    timeout_seconds: float = checked(30.0, between(1, 300))
    verify_tls: bool = True
    # Magento has no admin REST rate limit of its own (reference §8); what bounds the
    # load is max_in_flight (4 requests at once). A 429 from a proxy or WAF in front
    # halves the client's rate until the requests get through again (TokenBucket).
    requests_per_second: float = checked(40.0, between(0.5, 1_000))

    def secrets(self) -> list[str]:
        return [
            self.consumer_secret,
            self.access_token,
            self.access_token_secret,
            self.token,
        ]


@dataclass(frozen=True)
class TikTokConfig:
    api_base_url: str = checked("https://open-api.tiktokglobalshop.com", http_url)
    auth_base_url: str = checked("https://auth.tiktok-shops.com", http_url)
    timeout_seconds: float = checked(30.0, between(1, 300))
    verify_tls: bool = True
    # Per shop: below the 50 QPS per app and API TikTok is quoted at (reference §6,
    # unconfirmed); limits are dynamic, so a 429 / 36009002 halves the client's rate
    # and it climbs back while calls get through (TokenBucket).
    requests_per_second: float = checked(40.0, between(0.5, 1_000))


@dataclass(frozen=True)
class RefundToCancelConfig:
    """``[stores.magento_refund_to_tiktok_cancel]``: Magento credit memo → TikTok cancel."""

    enabled: bool = False
    cancel_reason: str = checked(
        "seller_cancel_paid_reason_address_not_deliver", known_reason
    )
    partial_refunds: str = checked("report", one_of(PARTIAL_REFUND_MODES))
    approve_buyer_requests: bool = True


@dataclass(frozen=True)
class CancelToRefundConfig:
    """``[stores.tiktok_cancel_to_magento_refund]``: TikTok cancellation → Magento refund."""

    enabled: bool = True
    restock: bool = True
    include_seller_cancellations: bool = False
    # Hold the linked Magento order while a buyer's cancellation request is pending.
    hold_on_request: bool = False


@dataclass(frozen=True)
class StoreConfig:
    name: str  # checked with safe_name by the loader (a bad name still counts as a duplicate)
    app_key: str
    app_secret: str
    # A number in TOML is taken as the id it spells.
    shop_id: str | None = field(default=None, metadata={"kind": (str, int)})
    shop_cipher: str | None = None
    market: str | None = checked(None, known_market)  # stored normalized (GB → UK)
    access_token: str | None = None
    refresh_token: str | None = None
    magento_store_ids: tuple[int, ...] = ()
    enabled: bool = True
    magento_refund_to_tiktok_cancel: RefundToCancelConfig = field(
        default_factory=RefundToCancelConfig
    )
    tiktok_cancel_to_magento_refund: CancelToRefundConfig = field(
        default_factory=CancelToRefundConfig
    )
    source: str = field(default="", metadata={"key": False})  # where it was defined

    def secrets(self) -> list[str]:
        return [self.app_secret, self.access_token or "", self.refresh_token or ""]


@dataclass(frozen=True)
class Config:
    path: Path = field(metadata={"key": False})
    worker: WorkerConfig
    magento: MagentoConfig
    tiktok: TikTokConfig
    stores: tuple[StoreConfig, ...]
    # The ``${…}`` references left unresolved, each with its location: only a config
    # loaded for a command that calls no API has them (``require_secrets=False``).
    unresolved: tuple[str, ...] = field(default=(), metadata={"key": False})

    @property
    def write_timeout_seconds(self) -> float:
        """How long a write may still complete after the client gave up on it (the
        engine holds a row that long before re-reading): the longer client timeout."""
        return float(max(self.magento.timeout_seconds, self.tiktok.timeout_seconds))

    def store(self, name: str) -> StoreConfig:
        for store in self.stores:
            if store.name == name:
                return store
        known = ", ".join(s.name for s in self.stores)
        raise ConfigError([f"no store named {name!r} (configured: {known})"])

    def secrets(self) -> list[str]:
        """Every configured secret value, for log redaction."""
        values = [*self.worker.secrets(), *self.magento.secrets()]
        for store in self.stores:
            values.extend(store.secrets())
        return [v for v in values if v]
