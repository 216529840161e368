"""searchCriteria as Magento's REST layer and MySQL evaluate it, plus ``fields``.

Parsing follows PHP's bracket syntax
(``searchCriteria[filter_groups][0][filters][0][field]``, camelCase accepted), the
collection processors decide the semantics (OR inside a group, AND across groups, a
missing sort direction means DESC) and MySQL decides the comparisons: numeric columns
compare as numbers, text case-insensitively, timestamps as ``YYYY-MM-DD HH:MM:SS``
strings, and any comparison with NULL is false. Paging clamps a ``currentPage`` past
the end to the last page instead of returning nothing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from cancelsync.sandbox.magento.errors import (
    INVALID_SORT,
    MAX_PAGE_SIZE,
    REQUIRED_FIELD,
    bad_request,
    internal_error,
    invalid_type,
)

T = TypeVar("T")
Node = dict[str, Any]

DEFAULT_PAGE_SIZE = 20  # webapi/validation/default_page_size
MAX_PAGE_SIZE_LIMIT = 300  # webapi/validation/maximum_page_size
_ALIASES = {
    "filterGroups": "filter_groups",
    "sortOrders": "sort_orders",
    "pageSize": "page_size",
    "currentPage": "current_page",
    "conditionType": "condition_type",
    "searchCriteria": "search_criteria",
}
_SEGMENT = re.compile(r"\[([^\[\]]*)\]")
_NUMBER_PREFIX = re.compile(r"\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


@dataclass(frozen=True)
class Filter:
    field: str | None
    value: str | None
    condition_type: str = "eq"


@dataclass(frozen=True)
class SortOrder:
    field: str | None
    direction: str | None  # "ASC", "DESC" or None (which sorts DESC)


@dataclass
class SearchCriteria:
    """A parsed ``searchCriteria``; ``echo()`` is the reply's ``search_criteria``."""

    filter_groups: list[list[Filter]] = field(default_factory=list)
    sort_orders: list[SortOrder] | None = None
    page_size: int | None = None
    current_page: int | None = None

    def echo(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "filter_groups": [
                {"filters": [_drop_none(vars(f)) for f in group]}
                for group in self.filter_groups
            ]
        }
        if self.sort_orders is not None:
            out["sort_orders"] = [_drop_none(vars(s)) for s in self.sort_orders]
        if self.page_size is not None:
            out["page_size"] = self.page_size
        if self.current_page is not None:
            out["current_page"] = self.current_page
        return out


def _drop_none(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v is not None}


# ------------------------------------------------------------------------ parsing


def nest_query(query: Sequence[tuple[str, str]]) -> Node:
    """PHP-style nesting of ``a[b][0]=v`` query keys (later keys win on conflicts)."""
    root: Node = {}
    for key, value in query:
        head, sep, rest = key.partition("[")
        parts = [head]
        pos = 0
        rest = sep + rest
        while sep and pos < len(rest):
            match = _SEGMENT.match(rest, pos)
            if match is None:
                break
            parts.append(match.group(1))
            pos = match.end()
        node = root
        for i, part in enumerate(parts):
            name = _ALIASES.get(part, part)
            if name == "":
                name = str(len(node))
            if i == len(parts) - 1:
                node[name] = value
                break
            child = node.get(name)
            if not isinstance(child, dict):
                child = {}
                node[name] = child
            node = child
    return root


def _as_int(value: Any) -> int:
    if isinstance(value, str):
        try:
            return int(float(value.strip()))
        except ValueError:
            pass
    raise invalid_type(value, "int")


def _as_str(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise invalid_type("Array", "string")


def parse_search_criteria(query: Sequence[tuple[str, str]]) -> SearchCriteria:
    """The ``searchCriteria`` of a query, or the 400 Magento gives for bad input."""
    root = nest_query(query)
    if "search_criteria" not in root:
        raise bad_request(REQUIRED_FIELD, {"fieldName": "searchCriteria"})
    raw = root["search_criteria"]
    if not isinstance(raw, dict):
        return SearchCriteria()  # the "?searchCriteria=" idiom: no criteria at all
    criteria = SearchCriteria()
    groups = raw.get("filter_groups", {})
    if not isinstance(groups, dict):
        raise invalid_type(groups, "Magento\\Framework\\Api\\Search\\FilterGroup[]")
    for group in groups.values():
        if not isinstance(group, dict):
            raise invalid_type(group, "Magento\\Framework\\Api\\Search\\FilterGroup")
        filters = group.get("filters", {})
        if not isinstance(filters, dict):
            raise invalid_type(filters, "Magento\\Framework\\Api\\Filter[]")
        parsed: list[Filter] = []
        for flt in filters.values():
            if not isinstance(flt, dict):
                raise invalid_type(flt, "Magento\\Framework\\Api\\Filter")
            condition = _as_str(flt.get("condition_type")) or "eq"
            parsed.append(
                Filter(_as_str(flt.get("field")), _as_str(flt.get("value")), condition)
            )
        criteria.filter_groups.append(parsed)
    if "sort_orders" in raw:
        sorts = raw["sort_orders"]
        if not isinstance(sorts, dict):
            raise invalid_type(sorts, "Magento\\Framework\\Api\\SortOrder[]")
        criteria.sort_orders = [_parse_sort(s) for s in sorts.values()]
    if "page_size" in raw:
        criteria.page_size = _as_int(raw["page_size"])
    if "current_page" in raw:
        criteria.current_page = _as_int(raw["current_page"])
    return criteria


def _parse_sort(raw: Any) -> SortOrder:
    if not isinstance(raw, dict):
        raise invalid_type(raw, "Magento\\Framework\\Api\\SortOrder")
    direction = _as_str(raw.get("direction"))
    if direction is not None:
        if direction.upper() not in ("ASC", "DESC"):
            raise bad_request(INVALID_SORT, [direction])
        direction = direction.upper()
    return SortOrder(_as_str(raw.get("field")), direction)


def apply_input_limits(criteria: SearchCriteria, *, enabled: bool) -> None:
    """``webapi/validation/input_limit_enabled``: default page size 20, at most 300."""
    if not enabled:
        return
    if criteria.page_size is None:
        criteria.page_size = DEFAULT_PAGE_SIZE
    elif criteria.page_size > MAX_PAGE_SIZE_LIMIT:
        raise bad_request(MAX_PAGE_SIZE, {"max": MAX_PAGE_SIZE_LIMIT})


# --------------------------------------------------------------------- evaluation


def _mysql_number(raw: str) -> float:
    """MySQL's cast of a string to a number: the leading numeric prefix, else 0."""
    match = _NUMBER_PREFIX.match(raw)
    return float(match.group(0)) if match else 0.0


def _text(value: Any, kind: str) -> str:
    if kind == "int":
        return str(int(value))
    if kind == "decimal":
        return f"{float(value):.4f}"  # DECIMAL(20,4) as MySQL prints it
    return str(value)


def _compare(value: Any, raw: str, kind: str) -> int:
    if kind in ("int", "decimal"):
        number, other = float(value), _mysql_number(raw)
        return (number > other) - (number < other)
    if kind == "datetime":
        left, right = str(value), raw
    else:  # utf8mb4_general_ci: case-insensitive, trailing spaces ignored
        left, right = str(value).casefold().rstrip(" "), raw.casefold().rstrip(" ")
    return (left > right) - (left < right)


def _like(value: Any, pattern: str, kind: str) -> bool:
    regex = []
    chars = iter(pattern)
    for ch in chars:
        if ch == "\\":
            regex.append(re.escape(next(chars, "\\")))
        elif ch == "%":
            regex.append(".*")
        elif ch == "_":
            regex.append(".")
        else:
            regex.append(re.escape(ch))
    compiled = re.compile("".join(regex), re.IGNORECASE | re.DOTALL)
    return compiled.fullmatch(_text(value, kind)) is not None


def _matches(value: Any, flt: Filter, kind: str) -> bool:
    cond = flt.condition_type
    if cond == "null":
        return value is None
    if cond == "notnull":
        return value is not None
    if value is None or flt.value is None:
        return False  # SQL: any comparison with NULL is not true
    raw = flt.value
    if cond in ("in", "nin"):
        hit = any(_compare(value, part, kind) == 0 for part in raw.split(","))
        return hit if cond == "in" else not hit
    if cond in ("like", "nlike"):
        hit = _like(value, raw, kind)
        return hit if cond == "like" else not hit
    if cond in ("finset", "nfinset"):
        hit = raw in _text(value, kind).split(",")
        return hit if cond == "finset" else not hit
    order = _compare(value, raw, kind)
    checks = {
        "neq": order != 0,
        "gt": order > 0,
        "gteq": order >= 0,
        "moreq": order >= 0,
        "from": order >= 0,
        "lt": order < 0,
        "lteq": order <= 0,
        "to": order <= 0,
    }
    # Unknown condition types fall through to a plain "=" in prepareSqlCondition().
    return checks.get(cond, order == 0)


def _sort_key(value: Any, kind: str) -> tuple[int, Any]:
    if value is None:
        return (0, 0)  # NULL sorts first in ascending order
    if kind in ("int", "decimal"):
        return (1, float(value))
    if kind == "datetime":
        return (1, str(value))
    return (1, str(value).casefold())


def run_search(
    rows: Sequence[tuple[Mapping[str, Any], T]],
    criteria: SearchCriteria,
    columns: Mapping[str, str],
) -> tuple[list[T], int]:
    """Filter, sort and page ``(row, payload)`` pairs; returns the page and total_count.

    ``columns`` maps each filterable column to its kind (int, decimal, text, datetime);
    anything else is an SQL error, which Magento masks as a 500.
    """
    for group in criteria.filter_groups:
        for flt in group:
            if flt.field not in columns:
                raise internal_error()
    matched = [
        (row, payload)
        for row, payload in rows
        if all(
            any(
                _matches(row.get(f.field or ""), f, columns[f.field or ""])
                for f in group
            )
            for group in criteria.filter_groups
            if group
        )
    ]
    for sort in reversed(criteria.sort_orders or []):
        if sort.field is None:
            continue
        if sort.field not in columns:
            raise internal_error()
        name, kind = sort.field, columns[sort.field]
        matched.sort(
            key=lambda pair: _sort_key(pair[0].get(name), kind),
            reverse=sort.direction != "ASC",
        )
    total = len(matched)
    return [payload for _, payload in _page(matched, criteria)], total


def _page(items: list[T], criteria: SearchCriteria) -> list[T]:
    size = criteria.page_size
    if not size:
        return items  # no (or zero) page size: every row
    if size < 0:
        return items[:1]  # Zend limitPage() turns a negative row count into 1
    last = max(math.ceil(len(items) / size), 1)
    page = criteria.current_page or 1
    page = 1 if page < 1 else min(page, last)  # past the end: the last page again
    return items[(page - 1) * size : page * size]


# ------------------------------------------------------------------ fields filter

FieldSpec = dict[str, "FieldSpec | None"]


def parse_fields(spec: str) -> FieldSpec:
    """Parse ``items[entity_id,order_id],total_count`` into a nested selection."""
    out: FieldSpec = {}
    depth = 0
    start = 0
    for i, ch in enumerate(spec + ","):
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif ch == "," and depth == 0:
            token = spec[start:i].strip()
            start = i + 1
            if not token:
                continue
            name, bracket, inner = token.partition("[")
            out[name.strip()] = parse_fields(inner[:-1]) if bracket else None
    return out


def apply_fields(payload: Any, selection: FieldSpec) -> Any:
    """Keep only the selected keys (lists are filtered element by element)."""
    if isinstance(payload, list):
        return [apply_fields(item, selection) for item in payload]
    if not isinstance(payload, dict):
        return payload
    return {
        key: payload[key] if sub is None else apply_fields(payload[key], sub)
        for key, sub in selection.items()
        if key in payload
    }
