"""The config's frozen dataclasses: every key, its type, its default and its check.

A field is a key of its TOML table (``source`` excepted). The loader takes the expected
TOML type from the annotation and the default from the field; a field without a default
is required. ``checked(default, check)`` attaches a check that returns a problem or None.
"""

from __future__ import annotations

import re
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


def http_url(value: Any) -> str | None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return f"{value!r} is not an http(s) URL"
    return None


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


def one_of(options: tuple[str, ...]) -> Check:
    def check(value: Any) -> str | None:
        return None if value in options else f"must be one of {', '.join(options)}"

    return check


def column_name(value: Any) -> str | None:
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
        return None
    return f"{value!r} is not a column name"


def safe_name(value: Any) -> str | None:
    if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", value):
        return None
    return f"use letters, digits, '-', '_' or '.' ({value!r})"


def known_reason(value: Any) -> str | None:
    if reasons.is_known_reason(value):
        return None
    families = ", ".join(sorted(reasons.FAMILIES))
    return (
        f"unknown cancel reason {value!r}; use a TikTok seller reason key "
        f"(see `cancelsync reasons`) or a family: {families}"
    )


def known_market(value: Any) -> str | None:
    if reasons.normalize_market(value) in reasons.MARKETS:
        return None
    return f"unknown market {value!r}; use one of {', '.join(sorted(reasons.MARKETS))}"


# --------------------------------------------------------------------------- tables


@dataclass(frozen=True)
class WorkerConfig:
    database: Path = Path("cancelsync.db")  # relative to the config file's folder
    poll_interval_seconds: int = checked(60, positive)
    overlap_seconds: int = checked(300, not_negative)
    first_run_lookback_hours: int = checked(24, not_negative)
    log_format: str = checked("auto", one_of(LOG_FORMATS))
    stores_dir: Path | None = None
    max_attempts: int = checked(5, positive)
    retry_backoff_seconds: int = checked(60, not_negative)
    # Writes in flight at once per store (actions of one order stay in order).
    max_in_flight: int = checked(4, positive)
    # Direction B's order-search cross-check runs this often (0: every cycle).
    cross_check_interval_seconds: int = checked(3_600, not_negative)
    # Service mode: Prometheus /metrics and /healthz on 127.0.0.1 (off when unset).
    metrics_port: int | None = checked(None, tcp_port)
    # A JSON POST {"text": ...} per new needs-attention item and per failing/recovered
    # store (off when unset). A secret: the URL carries the hook's token.
    alert_webhook_url: str | None = checked(None, secret_http_url)

    def secrets(self) -> list[str]:
        return [self.alert_webhook_url or ""]


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
    timeout_seconds: float = checked(30.0, positive)
    verify_tls: bool = True
    requests_per_second: float = checked(5.0, positive)

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
    timeout_seconds: float = checked(30.0, positive)
    verify_tls: bool = True
    requests_per_second: float = checked(5.0, positive)


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
