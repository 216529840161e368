"""The README's Configure table and cancel reason families read true against the code.

Both lists are documentation a merchant copies from; these tests keep them from drifting
away from the config model (``cancelsync.config.model``) and the reason validator
(``known_reason``, backed by ``cancelsync.reasons.FAMILIES``).
"""

from __future__ import annotations

import re
import typing
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

from cancelsync import reasons
from cancelsync.config.model import Config, known_reason

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
EXAMPLE = ROOT / "config.example.toml"
ELLIPSIS_PREFIX = "stores[]."  # "`…x.y`" in the table is short for "`stores[].x.y`"


def _section(text: str, heading: str) -> str:
    """The body of a ``## heading`` section, up to the next ``## `` heading."""
    start = text.index(f"\n{heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def _configure_rows() -> list[list[str]]:
    """The cells of the first table in "## Configure" (header and rule dropped)."""
    rows: list[list[str]] = []
    for line in _section(
        README.read_text(encoding="utf-8"), "## Configure"
    ).splitlines():
        if line.startswith("|"):
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
        elif rows:
            break  # the end of the first table
    assert rows[0][0] == "key", rows[0]
    return rows[2:]


def _keys_of_cell(cell: str) -> list[str]:
    """``worker.a``, ``b`` → worker.a, worker.b (later names share the first's table)."""
    names = re.findall(r"`([^`]+)`", cell)
    assert names, f"no key in {cell!r}"
    first = names[0]
    if first.startswith("…"):
        first = ELLIPSIS_PREFIX + first.removeprefix("…")
    prefix = first.rpartition(".")[0]
    return [first] + [f"{prefix}.{name}" for name in names[1:]]


def _readme_keys() -> list[str]:
    return [key for row in _configure_rows() for key in _keys_of_cell(row[0])]


def _model_keys(cls: type[Any], prefix: str) -> set[str]:
    """Every leaf key the loader reads for dataclass ``cls``, nested tables flattened."""
    hints = typing.get_type_hints(cls)
    keys: set[str] = set()
    for f in fields(cls):
        if not f.metadata.get("key", True):
            continue
        hint = hints[f.name]
        if isinstance(hint, type) and is_dataclass(hint):
            keys |= _model_keys(hint, f"{prefix}{f.name}.")
        else:
            keys.add(f"{prefix}{f.name}")
    return keys


def _all_model_keys() -> set[str]:
    hints = typing.get_type_hints(Config)
    keys: set[str] = set()
    for f in fields(Config):
        if not f.metadata.get("key", True):
            continue
        hint = hints[f.name]
        if f.name == "stores":
            (item,) = {a for a in typing.get_args(hint) if a is not Ellipsis}
            keys |= _model_keys(item, "stores[].")
        else:
            keys |= _model_keys(hint, f"{f.name}.")
    return keys


def test_configure_table_lists_every_config_key_and_no_other() -> None:
    listed = _readme_keys()
    model = _all_model_keys()
    assert len(listed) == len(set(listed)), "a key is listed twice in the README"
    assert sorted(set(listed) - model) == [], "README keys the config does not have"
    assert sorted(model - set(listed)) == [], "config keys the README does not list"


def _readme_families() -> set[str]:
    rows = [r for r in _configure_rows() if "cancel_reason" in r[0]]
    assert len(rows) == 1, rows
    meaning = rows[0][2]
    listed = meaning[meaning.index("family") :]
    # The family names are the lower-case identifiers in backticks after "family";
    # concrete keys (seller_…) and command lines are not families.
    return {
        name
        for name in re.findall(r"`([a-z_]+)`", listed)
        if not name.startswith("seller_")
    }


def test_readme_cancel_reason_families_are_the_validators() -> None:
    listed = _readme_families()
    assert listed == set(reasons.FAMILIES)
    for family in listed:
        assert known_reason(family) is None, family


def test_example_config_cancel_reason_families_are_the_validators() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    comment = " ".join(
        line.split("#", 1)[1] for line in text.splitlines() if "#" in line
    )
    match = re.search(r"a TikTok key or a family: ([a-z_ |]+);", comment)
    assert match, "config.example.toml no longer lists the cancel reason families"
    listed = {name.strip() for name in match.group(1).split("|")}
    assert listed == set(reasons.FAMILIES)


def test_validator_refuses_what_is_not_a_family_or_key() -> None:
    """The check the README families are compared with is a real gate."""
    assert known_reason("address_not_delivered") is not None
    assert known_reason("seller_cancel_paid_reason_address_not_deliver") is None


def _example_keys() -> set[str]:
    """The keys config.example.toml sets or shows commented out (``# key = …``), with
    their table: ``[worker]`` → ``worker.``, ``[[stores]]`` and its sub-tables →
    ``stores[].``."""
    keys: set[str] = set()
    table = ""
    for raw in EXAMPLE.read_text(encoding="utf-8").splitlines():
        line = raw.strip().removeprefix("#").strip()
        heading = re.fullmatch(r"\[\[?([a-z_.]+)\]\]?", line)
        if heading:
            name = heading.group(1)
            if name == "stores" or name.startswith("stores."):
                name = "stores[]" + name.removeprefix("stores")
            table = name + "."
            continue
        key = re.match(r"([a-z_]+) *= ", line)
        if key and table:
            keys.add(table + key.group(1))
    return keys


def test_example_config_shows_every_config_key() -> None:
    """Every key a merchant can set appears in config.example.toml (set, or commented
    out with its default), so the example is a complete starting point."""
    missing = sorted(_all_model_keys() - _example_keys())
    assert missing == [], "config keys config.example.toml does not show"
