"""Loading: TOML → ``${…}`` expansion → validation → the frozen dataclasses of ``model``.

Each table is read field by field from its dataclass (``_read``): the allowed keys are the
fields, the expected TOML type comes from the annotation and the default from the field.
Problems are collected with their location and raised together as one ``ConfigError``.
"""

from __future__ import annotations

import difflib
import os
import tomllib
import types
import typing
from collections.abc import Callable, Collection, Mapping
from dataclasses import MISSING, Field, fields, is_dataclass
from pathlib import Path
from typing import Any

from cancelsync import reasons
from cancelsync.config.expand import Expander
from cancelsync.config.model import (
    Config,
    MagentoConfig,
    StoreConfig,
    TikTokConfig,
    WorkerConfig,
    safe_name,
)
from cancelsync.errors import ConfigError

_TOP_LEVEL = {f.name for f in fields(Config) if f.metadata.get("key", True)}


def default_config_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$CANCELSYNC_CONFIG``, then ``./cancelsync.toml``."""
    env = os.environ if environ is None else environ
    return Path(env.get("CANCELSYNC_CONFIG") or "cancelsync.toml")


def load_config(path: Path | str, environ: Mapping[str, str] | None = None) -> Config:
    """Read, expand and validate a config file; raise ``ConfigError`` listing every problem."""
    path = Path(path)
    errors: list[str] = []
    raw = _read_toml(path, str(path), errors)
    if raw is None:
        raise ConfigError(errors)
    base = path.resolve().parent
    expand = Expander(dict(os.environ if environ is None else environ), base, errors)
    for section in ("worker", "magento", "tiktok"):
        if isinstance(raw.get(section), dict):
            raw[section] = expand(raw[section], section)
    if isinstance(raw.get("stores"), list):
        raw["stores"] = [
            expand(item, f"stores[{item.get('name', i)}]") if isinstance(item, dict)
            else item
            for i, item in enumerate(raw["stores"])
        ]  # fmt: skip
    v = _Validator(errors, expand.unset)
    v.unknown_keys(raw, _TOP_LEVEL, str(path))
    worker = _worker(v, _table(v, raw, "worker"), base)
    magento = _magento(v, _table(v, raw, "magento", required=True))
    tiktok = _tiktok(v, _table(v, raw, "tiktok"))
    stores = [_store(v, where, t) for where, t in _store_tables(raw, worker, expand)]
    _check_stores(stores, errors)
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


def _store_tables(
    raw: Mapping[str, Any], worker: WorkerConfig, expand: Expander
) -> list[tuple[str, dict[str, Any]]]:
    """``(location, table)`` of every ``[[stores]]`` entry, then every stores_dir file."""
    errors = expand.errors
    tables: list[tuple[str, dict[str, Any]]] = []
    raw_stores = raw.get("stores", [])
    if not isinstance(raw_stores, list):
        errors.append("stores: must be an array of tables ([[stores]])")
        raw_stores = []
    for index, item in enumerate(raw_stores):
        if not isinstance(item, dict):
            errors.append(f"stores[{index}]: must be a table")
            continue
        tables.append((f"stores[{item.get('name', index)}]", item))
    folder = worker.stores_dir
    if folder is not None and not folder.is_dir():
        errors.append(f"worker.stores_dir: folder {folder} does not exist")
    elif folder is not None:
        for file in sorted(folder.glob("*.toml")):
            label = f"{folder.name}/{file.name}"
            item = _read_toml(file, label, errors)
            if item is not None:
                tables.append((label, expand(item, label)))
    if not tables:
        errors.append(
            "stores: no store configured; add a [[stores]] table or a stores_dir"
        )
    return tables


def _check_stores(stores: list[StoreConfig], errors: list[str]) -> None:
    """Store names and shop ids are unique across the config and stores_dir."""
    names: dict[str, str] = {}
    for store in stores:
        if not store.name:
            continue  # already reported as missing
        if store.name in names:
            errors.append(
                f"{store.source}: duplicate store name {store.name!r} "
                f"(also in {names[store.name]})"
            )
        names.setdefault(store.name, store.source)
    shop_ids: dict[str, str] = {}
    for store in stores:
        if store.shop_id and store.shop_id in shop_ids:
            errors.append(
                f"{store.source}.shop_id: shop {store.shop_id} is already configured "
                f"in {shop_ids[store.shop_id]}"
            )
        if store.shop_id:
            shop_ids.setdefault(store.shop_id, store.source)


# --------------------------------------------------------------------------- tables


def _worker(v: _Validator, t: dict[str, Any], base: Path) -> WorkerConfig:
    values = _read(v, WorkerConfig, t, "worker")
    stores_dir = values["stores_dir"]
    values["database"] = base / values["database"]
    values["stores_dir"] = base / stores_dir if stores_dir else None
    return WorkerConfig(**values)


def _magento(v: _Validator, t: dict[str, Any]) -> MagentoConfig:
    # An unusable auth value is reported by _read and counts as the default, oauth1.
    bearer = t.get("auth") == "bearer"
    creds = ("token",) if bearer else (
        "consumer_key", "consumer_secret", "access_token", "access_token_secret"
    )  # fmt: skip
    values = _read(v, MagentoConfig, t, "magento", required=creds)
    if not bearer and "token" in t:
        v.errors.append('magento.token: only used with auth = "bearer"')
    return MagentoConfig(**_strip_slash(values, "base_url"))


def _tiktok(v: _Validator, t: dict[str, Any]) -> TikTokConfig:
    values = _read(v, TikTokConfig, t, "tiktok")
    return TikTokConfig(**_strip_slash(values, "api_base_url", "auth_base_url"))


def _store(v: _Validator, where: str, t: dict[str, Any]) -> StoreConfig:
    values = _read(v, StoreConfig, t, where)
    if values["name"] and (problem := safe_name(values["name"])):
        v.errors.append(f"{where}.name: {problem}")
    store_ids = values["magento_store_ids"]
    for sid in store_ids:
        if isinstance(sid, bool) or not isinstance(sid, int) or sid < 0:
            v.errors.append(
                f"{where}.magento_store_ids: {sid!r} is not a store id (integer)"
            )
    values["magento_store_ids"] = tuple(s for s in store_ids if isinstance(s, int))
    if values["market"]:
        values["market"] = reasons.normalize_market(values["market"])
    return StoreConfig(**values, source=where)


def _strip_slash(values: dict[str, Any], *keys: str) -> dict[str, Any]:
    """Base URLs are kept without a trailing slash (paths are appended to them)."""
    return {**values, **{k: values[k].rstrip("/") for k in keys}}


def _read(
    v: _Validator,
    cls: type[Any],
    t: Mapping[str, Any],
    where: str,
    *,
    required: Collection[str] = (),
) -> dict[str, Any]:
    """The values of every key of dataclass ``cls`` in table ``t`` (defaults where unset).

    A field without a default, or named in ``required``, must be set; a dataclass field
    is a nested table, read the same way.
    """
    keys = [f for f in fields(cls) if f.metadata.get("key", True)]
    v.unknown_keys(t, {f.name for f in keys}, where)
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in keys:
        hint = hints[f.name]
        if isinstance(hint, type) and is_dataclass(hint):
            table = _table(v, t, f.name, where=where)
            values[f.name] = hint(**_read(v, hint, table, f"{where}.{f.name}"))
            continue
        default = _default(f)
        value = v.get(
            t, f.name, where, f.metadata.get("kind") or _toml_kind(hint),
            "" if default is MISSING else default,
            required=default is MISSING or f.name in required,
            check=f.metadata.get("check"),
        )  # fmt: skip
        values[f.name] = _convert(hint, value, default)
    return values


def _default(f: Field[Any]) -> Any:
    if f.default_factory is not MISSING:
        return f.default_factory()
    return f.default


def _optional(hint: Any) -> Any:
    """``X`` for ``X | None``, else None."""
    if isinstance(hint, types.UnionType):
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        return inner[0] if len(inner) == 1 else None
    return None


_KINDS: dict[Any, type | tuple[type, ...]] = {
    bool: bool, int: int, float: (int, float), str: str, Path: str,
}  # fmt: skip


def _toml_kind(hint: Any) -> type | tuple[type, ...]:
    """The TOML value type a field of type ``hint`` is written as."""
    hint = _optional(hint) or hint
    if typing.get_origin(hint) is tuple:
        return list
    return _KINDS[hint]


def _convert(hint: Any, value: Any, default: Any) -> Any:
    """A TOML value as the field's type; an empty optional value is unset, an empty
    path the default."""
    inner = _optional(hint)
    if inner is not None:
        return None if value in (None, "") else inner(value)
    if hint is float:
        return float(value)
    if hint is Path:
        return Path(value) if value else default
    return value


# --------------------------------------------------------------------------- validation


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
