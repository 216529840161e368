"""Loading: TOML → ``${…}`` expansion → validation → the frozen dataclasses of ``model``.

Each table is read field by field from its dataclass (``_read``): the allowed keys are the
fields, the expected TOML type comes from the annotation and the default from the field.
Problems are collected with their location and raised together as one ``ConfigError``.
"""

from __future__ import annotations

import codecs
import difflib
import os
import re
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
    MAGENTO_STORE_ID_MAX,
    Config,
    MagentoConfig,
    StoreConfig,
    TikTokConfig,
    WorkerConfig,
    safe_name,
    shown,
    web_token_missing,
)
from cancelsync.errors import ConfigError
from cancelsync.files import file_in_the_way

_TOP_LEVEL = {f.name for f in fields(Config) if f.metadata.get("key", True)}


def default_config_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$CANCELSYNC_CONFIG``, then ``./cancelsync.toml``."""
    env = os.environ if environ is None else environ
    return Path(env.get("CANCELSYNC_CONFIG") or "cancelsync.toml")


def load_config(
    path: Path | str,
    environ: Mapping[str, str] | None = None,
    *,
    require_secrets: bool = True,
) -> Config:
    """Read, expand and validate a config file; raise ``ConfigError`` listing every problem.

    ``require_secrets=False`` (commands that call no API): a ``${VAR}`` that is not set or
    a ``${file:…}`` that cannot be read is noted in ``Config.unresolved``, not an error.
    """
    path = Path(path)
    errors: list[str] = []
    read = _read_toml(path, str(path), errors)
    if read is None:
        raise ConfigError(errors)
    raw, text = read
    base = path.resolve().parent
    env = dict(os.environ if environ is None else environ)
    expand = Expander(env, base, errors, required=require_secrets)
    for section in ("worker", "magento", "tiktok"):
        if isinstance(raw.get(section), dict):
            raw[section] = expand(raw[section], section)
    if isinstance(raw.get("stores"), list):
        raw["stores"] = [
            expand(item, _store_label(item, i)) if isinstance(item, dict) else item
            for i, item in enumerate(raw["stores"])
        ]  # fmt: skip
    v = _Validator(errors, expand.unset)
    v.unknown_keys(raw, _TOP_LEVEL, str(path))
    worker = _worker(v, _table(v, raw, "worker"), base)
    magento = _magento(v, _table(v, raw, "magento", required=True))
    tiktok = _tiktok(v, _table(v, raw, "tiktok"))
    tables = _store_tables(raw, worker, expand, _stores_lines(path.name, text))
    stores = [(_store(v, where, t), origin) for where, t, origin in tables]
    _check_stores(stores, errors)
    if errors:
        raise ConfigError(errors)
    return Config(path, worker, magento, tiktok, tuple(s for s, _ in stores),
                  unresolved=tuple(expand.unresolved))  # fmt: skip


_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def _read_toml(
    path: Path, label: str, errors: list[str]
) -> tuple[dict[str, Any], str] | None:
    """The parsed file and its text, or None with the problem in ``errors``."""
    try:
        with path.open("rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        errors.append(
            f"{label}: file not found (pass --config PATH or set CANCELSYNC_CONFIG)"
        )
        return None
    except IsADirectoryError:
        errors.append(f"{label}: is a folder, not a TOML file")
        return None
    except PermissionError:
        errors.append(f"{label}: permission denied")
        return None
    except OSError as exc:
        errors.append(f"{label}: cannot read: {exc.strerror or exc}")
        return None
    # Windows editors save a byte order mark; TOML is UTF-8, where a BOM means nothing.
    data = data.removeprefix(codecs.BOM_UTF8)
    if data.startswith(_UTF16_BOMS) or (len(data) >= 2 and b"\x00" in data[:2]):
        errors.append(f"{label}: saved as UTF-16: save it as UTF-8")
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        errors.append(f"{label}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset "
                      f"{exc.start}): save it as UTF-8")  # fmt: skip
        return None
    try:
        return tomllib.loads(text), text
    except RecursionError:
        errors.append(f"{label}: invalid TOML: nested too deeply")
    except ValueError as exc:  # TOMLDecodeError, or an integer too long to read
        errors.append(f"{label}: invalid TOML: {exc}")
    return None


def _store_label(item: Mapping[str, Any], index: int) -> str:
    """``stores[NAME]``, or ``stores[INDEX]`` when the name is missing or not a name."""
    name = item.get("name")
    if isinstance(name, str) and 0 < len(name) <= 60 and name.isprintable():
        return f"stores[{name}]"
    return f"stores[{index}]"


_STORES_HEADER = re.compile(
    r"""^[ \t]*\[\[[ \t]*(stores|"stores"|'stores')[ \t]*\]\]""", re.M
)


def _stores_lines(file_name: str, text: str) -> list[str]:
    """Where each ``[[stores]]`` table of the main file starts: ``NAME line N``."""
    return [
        f"{file_name} line {text.count(chr(10), 0, m.start()) + 1}"
        for m in _STORES_HEADER.finditer(text)
    ]


def _store_tables(
    raw: Mapping[str, Any], worker: WorkerConfig, expand: Expander, lines: list[str]
) -> list[tuple[str, dict[str, Any], str]]:
    """``(location, table, origin)`` of every ``[[stores]]`` entry, then every stores_dir
    file; ``origin`` says where to find it (``cancelsync.toml line 12 ([[stores]] #1)``,
    ``stores.d/eu.toml``)."""
    errors = expand.errors
    tables: list[tuple[str, dict[str, Any], str]] = []
    raw_stores = raw.get("stores", [])
    if not isinstance(raw_stores, list):
        errors.append("stores: must be an array of tables ([[stores]])")
        raw_stores = []
    # Header lines match the tables one to one unless some are inline (stores = [{...}]).
    by_line = len(lines) == len(raw_stores)
    for index, item in enumerate(raw_stores):
        if not isinstance(item, dict):
            errors.append(f"stores[{index}]: must be a table")
            continue
        origin = f"[[stores]] #{index + 1}"
        if by_line:
            origin = f"{lines[index]} ({origin})"
        tables.append((_store_label(item, index), item, origin))
    folder = worker.stores_dir
    if folder is not None and not folder.is_dir():
        errors.append(f"worker.stores_dir: folder {folder} does not exist")
    elif folder is not None:
        for file in sorted(folder.glob("*.toml")):
            label = f"{folder.name}/{file.name}"
            read = _read_toml(file, label, errors)
            if read is not None:
                tables.append((label, expand(read[0], label), label))
    if not tables:
        errors.append(
            "stores: no store configured; add a [[stores]] table or a stores_dir"
        )
    return tables


def _check_stores(stores: list[tuple[StoreConfig, str]], errors: list[str]) -> None:
    """Store names and shop ids are unique across the config and stores_dir; a duplicate
    names both definitions (``origin``: file and line, or the stores_dir file)."""
    names: dict[str, str] = {}
    for store, origin in stores:
        if not store.name:
            continue  # already reported as missing
        if store.name in names:
            errors.append(
                f"{store.source}: duplicate store name {shown(store.name)}, defined in "
                f"{names[store.name]} and in {origin}"
            )
        names.setdefault(store.name, origin)
    shop_ids: dict[str, str] = {}
    for store, origin in stores:
        if store.shop_id and store.shop_id in shop_ids:
            errors.append(
                f"{store.source}.shop_id: shop {store.shop_id} is already configured "
                f"in {shop_ids[store.shop_id]}"
            )
        if store.shop_id:
            shop_ids.setdefault(store.shop_id, origin)


# --------------------------------------------------------------------------- tables


def _worker(v: _Validator, t: dict[str, Any], base: Path) -> WorkerConfig:
    values = _read(v, WorkerConfig, t, "worker")
    stores_dir = values["stores_dir"]
    values["database"] = base / values["database"]
    values["stores_dir"] = base / stores_dir if stores_dir else None
    for key in ("database", "stores_dir"):
        if values[key] is not None and "\x00" in str(values[key]):
            v.errors.append(f"worker.{key}: contains a NUL character")
            values[key] = None if key == "stores_dir" else base / "cancelsync.db"
    if problem := _database_problem(values["database"]):
        v.errors.append(f"worker.database: {problem}")
    worker = WorkerConfig(**values)
    # The order center never runs open. A token that is set but unusable (too short, an
    # unresolved ${…}) is reported as such already.
    if worker.web_listen and not t.get("web_token") and not worker.web_token:
        v.errors.append(web_token_missing(worker.web_listen))
    return worker


def _database_problem(database: Path) -> str | None:
    """Why no database can be created at ``database``, when the file system says so."""
    if database.is_dir():
        return (f"{database} is a folder. Resolution: name a file in it "
                f"({database / 'cancelsync.db'})")  # fmt: skip
    blocker = file_in_the_way(database.parent)
    if blocker is not None:
        return (f"{blocker} is a file, not a folder. Resolution: point worker.database "
                "at a file inside a folder")  # fmt: skip
    return None


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
    good = [sid for sid in store_ids if _store_id(sid)]
    for sid in store_ids:
        if not _store_id(sid):
            v.errors.append(f"{where}.magento_store_ids: {shown(sid)} is not a store id "
                            f"(an integer from 0 to {MAGENTO_STORE_ID_MAX})")  # fmt: skip
    values["magento_store_ids"] = tuple(good)
    if values["market"]:
        values["market"] = reasons.normalize_market(values["market"])
    return StoreConfig(**values, source=where)


def _store_id(value: Any) -> bool:
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and 0 <= value <= MAGENTO_STORE_ID_MAX
    )


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
                self.errors.append(f"{where}: unknown key {shown(key)}{extra}")

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
                f"{where}.{key}: expected {_kind_name(kind)}, got {shown(value)}"
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
