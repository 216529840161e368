"""Configuration: TOML → ``${VAR}`` expansion → validation → frozen, typed objects.

The config is loaded once at start-up (``load_config``) and passed down explicitly; nothing
else reads the file or the environment. Validation collects *every* problem with its location
(``stores[us-main].app_secret: missing``, ``stores.d/eu.toml: unknown key 'restok'``) and raises
one ``ConfigError``. Unknown keys are errors: a typo in money-moving config must not pass.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cancelsync import reasons
from cancelsync.errors import ConfigError

LOG_FORMATS = ("auto", "json", "console")
MAGENTO_AUTH_MODES = ("oauth1", "bearer")
PARTIAL_REFUND_MODES = ("report", "cancel_items")

# ${VAR}, ${file:PATH} or ${credential:NAME}; no nesting, and expanded text is not rescanned.
_VAR = re.compile(
    r"\$\{(?:(?P<kind>file|credential):(?P<ref>[^}]+)|(?P<name>[A-Za-z_][A-Za-z0-9_]*))\}"
)


@dataclass(frozen=True)
class WorkerConfig:
    database: Path
    poll_interval_seconds: int = 60
    overlap_seconds: int = 300
    first_run_lookback_hours: int = 24
    log_format: str = "auto"
    stores_dir: Path | None = None
    max_attempts: int = 5
    retry_backoff_seconds: int = 60


@dataclass(frozen=True)
class MagentoConfig:
    base_url: str
    store_code: str = "all"
    auth: str = "oauth1"
    consumer_key: str = ""
    consumer_secret: str = ""
    access_token: str = ""
    access_token_secret: str = ""
    token: str = ""
    tiktok_order_id_field: str = "ext_order_id"
    timeout_seconds: float = 30.0
    verify_tls: bool = True
    requests_per_second: float = 5.0

    def secrets(self) -> list[str]:
        return [
            self.consumer_secret,
            self.access_token,
            self.access_token_secret,
            self.token,
        ]


@dataclass(frozen=True)
class TikTokConfig:
    api_base_url: str = "https://open-api.tiktokglobalshop.com"
    auth_base_url: str = "https://auth.tiktok-shops.com"
    timeout_seconds: float = 30.0
    verify_tls: bool = True
    requests_per_second: float = 5.0


@dataclass(frozen=True)
class RefundToCancelConfig:
    """``[stores.magento_refund_to_tiktok_cancel]``: Magento credit memo → TikTok cancel."""

    enabled: bool = False
    cancel_reason: str = "seller_cancel_paid_reason_address_not_deliver"
    partial_refunds: str = "report"  # report | cancel_items
    approve_buyer_requests: bool = True


@dataclass(frozen=True)
class CancelToRefundConfig:
    """``[stores.tiktok_cancel_to_magento_refund]``: TikTok cancellation → Magento refund."""

    enabled: bool = True
    restock: bool = True
    include_seller_cancellations: bool = False


@dataclass(frozen=True)
class StoreConfig:
    name: str
    app_key: str
    app_secret: str
    shop_id: str | None = None
    shop_cipher: str | None = None
    market: str | None = None
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
    source: str = ""  # where it was defined, for messages

    def secrets(self) -> list[str]:
        return [self.app_secret, self.access_token or "", self.refresh_token or ""]


@dataclass(frozen=True)
class Config:
    path: Path
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
        values = self.magento.secrets()
        for store in self.stores:
            values.extend(store.secrets())
        return [v for v in values if v]


# --------------------------------------------------------------------------- loading


def default_config_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$CANCELSYNC_CONFIG``, then ``./cancelsync.toml``."""
    env = os.environ if environ is None else environ
    return Path(env.get("CANCELSYNC_CONFIG") or "cancelsync.toml")


def load_config(path: Path | str, environ: Mapping[str, str] | None = None) -> Config:
    """Read, expand and validate a config file; raise ``ConfigError`` listing every problem."""
    path = Path(path)
    env = dict(os.environ if environ is None else environ)
    errors: list[str] = []
    unset: set[str] = set()
    raw = _read_toml(path, str(path), errors)
    if raw is None:
        raise ConfigError(errors)
    base = path.resolve().parent
    for section in ("worker", "magento", "tiktok"):
        if isinstance(raw.get(section), dict):
            raw[section] = _expand(raw[section], section, env, errors, unset, base)
    if isinstance(raw.get("stores"), list):
        raw["stores"] = [
            _expand(item, f"stores[{item.get('name', i)}]", env, errors, unset, base)
            if isinstance(item, dict)
            else item
            for i, item in enumerate(raw["stores"])
        ]
    v = _Validator(errors, unset)

    v.unknown_keys(raw, {"worker", "magento", "tiktok", "stores"}, str(path))
    worker = _worker(v, _table(v, raw, "worker"), base)
    magento = _magento(v, _table(v, raw, "magento", required=True))
    tiktok = _tiktok(v, _table(v, raw, "tiktok"))

    store_tables: list[tuple[str, dict[str, Any]]] = []
    raw_stores = raw.get("stores", [])
    if not isinstance(raw_stores, list):
        errors.append("stores: must be an array of tables ([[stores]])")
        raw_stores = []
    for index, item in enumerate(raw_stores):
        if not isinstance(item, dict):
            errors.append(f"stores[{index}]: must be a table")
            continue
        store_tables.append((f"stores[{item.get('name', index)}]", item))
    if worker.stores_dir is not None:
        if not worker.stores_dir.is_dir():
            errors.append(
                f"worker.stores_dir: folder {worker.stores_dir} does not exist"
            )
        else:
            for file in sorted(worker.stores_dir.glob("*.toml")):
                label = f"{worker.stores_dir.name}/{file.name}"
                item = _read_toml(file, label, errors)
                if item is not None:
                    store_tables.append(
                        (label, _expand(item, label, env, errors, unset, base))
                    )

    stores = [_store(v, where, item) for where, item in store_tables]
    if not store_tables:
        errors.append(
            "stores: no store configured; add a [[stores]] table or a stores_dir"
        )
    seen: dict[str, str] = {}
    for store in stores:
        if not store.name:
            continue  # already reported as missing
        if store.name in seen:
            errors.append(
                f"{store.source}: duplicate store name {store.name!r} "
                f"(also in {seen[store.name]})"
            )
        seen.setdefault(store.name, store.source)
    shop_ids: dict[str, str] = {}
    for store in stores:
        if store.shop_id and store.shop_id in shop_ids:
            errors.append(
                f"{store.source}.shop_id: shop {store.shop_id} is already configured "
                f"in {shop_ids[store.shop_id]}"
            )
        if store.shop_id:
            shop_ids.setdefault(store.shop_id, store.source)
    if errors:
        raise ConfigError(errors)
    return Config(path, worker, magento, tiktok, tuple(stores))


def _read_toml(path: Path, label: str, errors: list[str]) -> dict[str, Any] | None:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        errors.append(
            f"{label}: file not found (pass --config PATH or set CANCELSYNC_CONFIG)"
        )
    except IsADirectoryError:
        errors.append(f"{label}: is a folder, not a TOML file")
    except PermissionError:
        errors.append(f"{label}: permission denied")
    except tomllib.TOMLDecodeError as exc:
        errors.append(f"{label}: invalid TOML: {exc}")
    return None


def _expand(
    value: Any,
    where: str,
    env: Mapping[str, str],
    errors: list[str],
    unset: set[str],
    base: Path,
) -> Any:
    """Replace ``${VAR}``, ``${file:PATH}`` and ``${credential:NAME}`` in every string.

    ``${file:PATH}`` is the file's text (PATH relative to the config file's folder) and
    ``${credential:NAME}`` the file ``$CREDENTIALS_DIRECTORY/NAME`` that systemd's
    ``LoadCredential=`` provides; one trailing newline is dropped. They land in the same
    fields as ``${VAR}``, so ``Config.secrets()`` hands them to the log redactor alike. An
    unset variable or unreadable file is an error naming the key; its location goes into
    ``unset`` so the validator reports nothing more about it (no "not an http(s) URL" for
    ``${MAGENTO_URL}``).
    """
    if isinstance(value, str):

        def sub(match: re.Match[str]) -> str:
            kind, ref, name = match.group("kind", "ref", "name")
            if kind is not None:
                text, problem = _read_secret(kind, ref, env, base)
                if problem:
                    errors.append(f"{where}: {problem}")
                    unset.add(where)
                    return match.group(0)
                return text
            if name not in env:
                errors.append(f"{where}: environment variable {name} is not set")
                unset.add(where)
                return match.group(0)
            return env[name]

        return _VAR.sub(sub, value)
    if isinstance(value, dict):
        return {
            k: _expand(v, f"{where}.{k}", env, errors, unset, base)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_expand(v, where, env, errors, unset, base) for v in value]
    return value


def _read_secret(
    kind: str, ref: str, env: Mapping[str, str], base: Path
) -> tuple[str, str]:
    """``(text, "")`` of a ``${file:…}`` / ``${credential:…}`` reference, or ``("", problem)``."""
    if kind == "credential":
        folder = env.get("CREDENTIALS_DIRECTORY")
        if "/" in ref or ref in (".", ".."):
            return "", f"credential name {ref!r} must be a plain name (no '/')"
        if not folder:
            return "", (
                f"${{credential:{ref}}} needs $CREDENTIALS_DIRECTORY, which systemd sets "
                f"only inside a unit with LoadCredential={ref}:PATH; outside it use "
                f"${{file:PATH}}"
            )
        path = Path(folder) / ref
    else:
        path = base / ref  # an absolute ref replaces base
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        reason = "file not found"
    except PermissionError:
        reason = "permission denied (is it readable by the user cancelsync runs as?)"
    except IsADirectoryError:
        reason = "is a folder, not a file"
    except UnicodeDecodeError:
        reason = "not UTF-8 text"
    except OSError as exc:
        reason = exc.strerror or str(exc)
    else:
        # Editors and `echo` end files with a newline that is not part of the secret.
        if text.endswith("\r\n"):
            return text[:-2], ""
        return text.removesuffix("\n"), ""
    return "", f"cannot read secret file {path}: {reason}"


class _Validator:
    """Typed getters that record problems instead of raising."""

    def __init__(self, errors: list[str], unset: set[str] | None = None) -> None:
        self.errors = errors
        self.unset = unset or set()  # locations already reported as an unset ${VAR}

    def unknown_keys(
        self, table: Mapping[str, Any], allowed: set[str], where: str
    ) -> None:
        for key in table:
            if key not in allowed:
                hint = _close_match(key, allowed)
                extra = f" (did you mean {hint!r}?)" if hint else ""
                self.errors.append(f"{where}: unknown key {key!r}{extra}")

    def get(
        self,
        table: Mapping[str, Any],
        key: str,
        where: str,
        kind: type | tuple[type, ...],
        default: Any,
        *,
        required: bool = False,
        check: Callable[[Any], str | None] | None = None,
    ) -> Any:
        if key not in table:
            if required:
                self.errors.append(f"{where}.{key}: missing")
            return default
        if f"{where}.{key}" in self.unset:
            return default
        value = table[key]
        # bool is an int in Python; never accept true for a number.
        wrong_bool = isinstance(value, bool) and bool not in _as_tuple(kind)
        if wrong_bool or not isinstance(value, kind):
            self.errors.append(
                f"{where}.{key}: expected {_kind_name(kind)}, got {value!r}"
            )
            return default
        if required and isinstance(value, str) and not value.strip():
            self.errors.append(f"{where}.{key}: missing (empty)")
            return default
        if check is not None:
            problem = check(value)
            if problem:
                self.errors.append(f"{where}.{key}: {problem}")
                return default
        return value


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {bool: "true/false", int: "an integer", float: "a number", str: "a string"}
    return " or ".join(names.get(k, k.__name__) for k in _as_tuple(kind))


def _close_match(key: str, allowed: set[str]) -> str | None:
    import difflib

    found = difflib.get_close_matches(key, sorted(allowed), n=1, cutoff=0.75)
    return found[0] if found else None


def _table(
    v: _Validator,
    raw: Mapping[str, Any],
    key: str,
    *,
    required: bool = False,
    where: str = "",
) -> dict[str, Any]:
    value = raw.get(key)
    location = f"{where}.{key}" if where else key
    if value is None:
        if required:
            v.errors.append(f"[{location}]: missing section")
        return {}
    if not isinstance(value, dict):
        v.errors.append(f"{location}: must be a table ([{location}])")
        return {}
    return value


def _positive(value: Any) -> str | None:
    return None if value > 0 else "must be greater than 0"


def _not_negative(value: Any) -> str | None:
    return None if value >= 0 else "must not be negative"


def _url(value: Any) -> str | None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return f"{value!r} is not an http(s) URL"
    return None


def _one_of(options: tuple[str, ...]) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        return None if value in options else f"must be one of {', '.join(options)}"

    return check


WORKER_KEYS = {
    "database", "poll_interval_seconds", "overlap_seconds", "first_run_lookback_hours",
    "log_format", "stores_dir", "max_attempts", "retry_backoff_seconds",
}  # fmt: skip


def _worker(v: _Validator, t: dict[str, Any], base: Path) -> WorkerConfig:
    w = "worker"
    v.unknown_keys(t, WORKER_KEYS, w)
    database = v.get(t, "database", w, str, "cancelsync.db")
    stores_dir = v.get(t, "stores_dir", w, str, None)
    return WorkerConfig(
        database=(base / database) if database else base / "cancelsync.db",
        poll_interval_seconds=v.get(
            t, "poll_interval_seconds", w, int, 60, check=_positive
        ),
        overlap_seconds=v.get(t, "overlap_seconds", w, int, 300, check=_not_negative),
        first_run_lookback_hours=v.get(
            t, "first_run_lookback_hours", w, int, 24, check=_not_negative
        ),
        log_format=v.get(t, "log_format", w, str, "auto", check=_one_of(LOG_FORMATS)),
        stores_dir=(base / stores_dir) if stores_dir else None,
        max_attempts=v.get(t, "max_attempts", w, int, 5, check=_positive),
        retry_backoff_seconds=v.get(
            t, "retry_backoff_seconds", w, int, 60, check=_not_negative
        ),
    )


MAGENTO_KEYS = {
    "base_url", "store_code", "auth", "consumer_key", "consumer_secret", "access_token",
    "access_token_secret", "token", "tiktok_order_id_field", "timeout_seconds",
    "verify_tls", "requests_per_second",
}  # fmt: skip


def _magento(v: _Validator, t: dict[str, Any]) -> MagentoConfig:
    w = "magento"
    v.unknown_keys(t, MAGENTO_KEYS, w)
    auth = v.get(t, "auth", w, str, "oauth1", check=_one_of(MAGENTO_AUTH_MODES))
    if auth == "oauth1":
        creds: tuple[str, ...] = (
            "consumer_key",
            "consumer_secret",
            "access_token",
            "access_token_secret",
        )
        creds_required = True
        if "token" in t:
            v.errors.append(f'{w}.token: only used with auth = "bearer"')
    else:
        creds = ("token",)
        creds_required = True
    values = {
        key: v.get(t, key, w, str, "", required=(key in creds and creds_required))
        for key in ("consumer_key", "consumer_secret", "access_token",
                    "access_token_secret", "token")
    }  # fmt: skip
    field_name = v.get(t, "tiktok_order_id_field", w, str, "ext_order_id")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", field_name):
        v.errors.append(
            f"{w}.tiktok_order_id_field: {field_name!r} is not a column name"
        )
    return MagentoConfig(
        base_url=v.get(t, "base_url", w, str, "", required=True, check=_url).rstrip(
            "/"
        ),
        store_code=v.get(t, "store_code", w, str, "all"),
        auth=auth,
        tiktok_order_id_field=field_name,
        timeout_seconds=float(
            v.get(t, "timeout_seconds", w, (int, float), 30.0, check=_positive)
        ),
        verify_tls=v.get(t, "verify_tls", w, bool, True),
        requests_per_second=float(
            v.get(t, "requests_per_second", w, (int, float), 5.0, check=_positive)
        ),
        **values,
    )


TIKTOK_KEYS = {
    "api_base_url", "auth_base_url", "timeout_seconds", "verify_tls", "requests_per_second",
}  # fmt: skip


def _tiktok(v: _Validator, t: dict[str, Any]) -> TikTokConfig:
    w = "tiktok"
    v.unknown_keys(t, TIKTOK_KEYS, w)
    d = TikTokConfig()
    return TikTokConfig(
        api_base_url=v.get(
            t, "api_base_url", w, str, d.api_base_url, check=_url
        ).rstrip("/"),
        auth_base_url=v.get(
            t, "auth_base_url", w, str, d.auth_base_url, check=_url
        ).rstrip("/"),
        timeout_seconds=float(
            v.get(t, "timeout_seconds", w, (int, float), 30.0, check=_positive)
        ),
        verify_tls=v.get(t, "verify_tls", w, bool, True),
        requests_per_second=float(
            v.get(t, "requests_per_second", w, (int, float), 5.0, check=_positive)
        ),
    )


STORE_KEYS = {
    "name", "app_key", "app_secret", "shop_id", "shop_cipher", "market", "access_token",
    "refresh_token", "magento_store_ids", "enabled", "magento_refund_to_tiktok_cancel",
    "tiktok_cancel_to_magento_refund",
}  # fmt: skip
REFUND_TO_CANCEL_KEYS = {
    "enabled", "cancel_reason", "partial_refunds", "approve_buyer_requests",
}  # fmt: skip
CANCEL_TO_REFUND_KEYS = {"enabled", "restock", "include_seller_cancellations"}


def _reason_check(value: Any) -> str | None:
    if reasons.is_known_reason(value):
        return None
    families = ", ".join(sorted(reasons.FAMILIES))
    return (
        f"unknown cancel reason {value!r}; use a TikTok seller reason key "
        f"(see `cancelsync reasons`) or a family: {families}"
    )


def _market_check(value: Any) -> str | None:
    if reasons.normalize_market(value) in reasons.MARKETS:
        return None
    return f"unknown market {value!r}; use one of {', '.join(sorted(reasons.MARKETS))}"


def _store(v: _Validator, where: str, t: dict[str, Any]) -> StoreConfig:
    v.unknown_keys(t, STORE_KEYS, where)
    name = v.get(t, "name", where, str, "", required=True)
    if name and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        v.errors.append(
            f"{where}.name: use letters, digits, '-', '_' or '.' ({name!r})"
        )
    shop_id = v.get(t, "shop_id", where, (str, int), None)
    store_ids = v.get(t, "magento_store_ids", where, list, [])
    for sid in store_ids:
        if isinstance(sid, bool) or not isinstance(sid, int) or sid < 0:
            v.errors.append(
                f"{where}.magento_store_ids: {sid!r} is not a store id (integer)"
            )
    market = v.get(t, "market", where, str, None, check=_market_check)

    a_where = f"{where}.magento_refund_to_tiktok_cancel"
    a_raw = _table(v, t, "magento_refund_to_tiktok_cancel", where=where)
    v.unknown_keys(a_raw, REFUND_TO_CANCEL_KEYS, a_where)
    d_a = RefundToCancelConfig()
    refund_to_cancel = RefundToCancelConfig(
        enabled=v.get(a_raw, "enabled", a_where, bool, d_a.enabled),
        cancel_reason=v.get(
            a_raw, "cancel_reason", a_where, str, d_a.cancel_reason, check=_reason_check
        ),
        partial_refunds=v.get(
            a_raw, "partial_refunds", a_where, str, d_a.partial_refunds,
            check=_one_of(PARTIAL_REFUND_MODES),
        ),
        approve_buyer_requests=v.get(
            a_raw, "approve_buyer_requests", a_where, bool, d_a.approve_buyer_requests
        ),
    )  # fmt: skip

    b_where = f"{where}.tiktok_cancel_to_magento_refund"
    b_raw = _table(v, t, "tiktok_cancel_to_magento_refund", where=where)
    v.unknown_keys(b_raw, CANCEL_TO_REFUND_KEYS, b_where)
    d_b = CancelToRefundConfig()
    cancel_to_refund = CancelToRefundConfig(
        enabled=v.get(b_raw, "enabled", b_where, bool, d_b.enabled),
        restock=v.get(b_raw, "restock", b_where, bool, d_b.restock),
        include_seller_cancellations=v.get(
            b_raw, "include_seller_cancellations", b_where, bool,
            d_b.include_seller_cancellations,
        ),
    )  # fmt: skip

    def opt_str(key: str) -> str | None:
        value = v.get(t, key, where, str, None)
        return value or None

    return StoreConfig(
        name=name,
        app_key=v.get(t, "app_key", where, str, "", required=True),
        app_secret=v.get(t, "app_secret", where, str, "", required=True),
        shop_id=str(shop_id) if shop_id not in (None, "") else None,
        shop_cipher=opt_str("shop_cipher"),
        market=reasons.normalize_market(market) if market else None,
        access_token=opt_str("access_token"),
        refresh_token=opt_str("refresh_token"),
        magento_store_ids=tuple(s for s in store_ids if isinstance(s, int)),
        enabled=v.get(t, "enabled", where, bool, True),
        magento_refund_to_tiktok_cancel=refund_to_cancel,
        tiktok_cancel_to_magento_refund=cancel_to_refund,
        source=where,
    )
