"""A small, pure builder for Magento ``searchCriteria`` query parameters.

``SearchCriteria`` is immutable: every method returns a new criteria. ``params()`` gives
the ``(key, value)`` pairs; ``query()`` is the query string the client sends, encoded
here rather than by ``requests``' ``params=``, because OAuth 1.0a signs exactly what is
sent and Magento verifies it from the raw query:

- ``[`` and ``]`` are percent-encoded (oauthlib refuses raw brackets);
- a space is ``%20``, never ``+``: Magento decodes the signed query with PHP
  ``rawurldecode``, which keeps ``+`` a plus, while oauthlib signs it as a space, so a
  ``created_at`` value sent as ``2026-11-30+01:02:03`` fails with 401 "The signature
  is invalid" (magento/magento2 PR #34896, issue #37278; reference §1).

Filters added with ``where`` each form their own filter group (groups are ANDed);
filters given together to ``any_of`` share one group (ORed). Two Magento quirks are
enforced here:

- every ``[n]`` index stays below 10, because Magento versions and OAuth clients sort
  the signed parameters differently once ``[10]`` sorts before ``[2]`` (a signature
  mismatch);
- ``pageSize`` is always sent and never above 300 (stores with input limits refuse
  more, and no page size at all means *every* row).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import quote, urlencode

MAX_PAGE_SIZE = 300
MAX_INDEX = 9  # keep every [n] a single digit (see the module docstring)
CONDITION_TYPES = frozenset(
    {
        "eq", "neq", "gt", "gteq", "lt", "lteq", "in", "nin", "like", "nlike",
        "null", "notnull", "finset", "nfinset", "from", "to", "moreq",
    }
)  # fmt: skip
_PREFIX = "searchCriteria"

FilterValue = str | int | Decimal | datetime | Iterable[str | int]


def magento_datetime(when: datetime) -> str:
    """Format an aware datetime as Magento stores it: UTC ``YYYY-MM-DD HH:MM:SS``."""
    if when.tzinfo is None:
        raise ValueError(
            "magento_datetime needs an aware datetime (Magento stores UTC)"
        )
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _render(value: FilterValue) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, datetime):
        return magento_datetime(value)
    if isinstance(value, str | int | Decimal):
        return str(value)
    parts = [str(v) for v in value]
    if any("," in p for p in parts):
        raise ValueError("an 'in'/'nin' value may not contain a comma")
    return ",".join(parts)


@dataclass(frozen=True)
class Filter:
    """One ``field condition_type value`` test."""

    field: str
    value: FilterValue
    condition_type: str = "eq"

    def __post_init__(self) -> None:
        if self.condition_type not in CONDITION_TYPES:
            raise ValueError(f"unknown condition_type {self.condition_type!r}")
        if not self.field:
            raise ValueError("a filter needs a field")


@dataclass(frozen=True)
class SearchCriteria:
    """Immutable searchCriteria; build with ``where``/``any_of``/``sort``/``page``."""

    filter_groups: tuple[tuple[Filter, ...], ...] = ()
    sort_orders: tuple[tuple[str, str], ...] = ()
    page_size: int = 100
    current_page: int = 1

    def where(
        self, field: str, value: FilterValue, condition_type: str = "eq"
    ) -> SearchCriteria:
        """AND a new filter group holding one filter."""
        return self.any_of(Filter(field, value, condition_type))

    def any_of(self, *filters: Filter) -> SearchCriteria:
        """AND a new filter group whose filters are ORed."""
        if not filters:
            raise ValueError("a filter group needs at least one filter")
        _check_index(len(filters) - 1, "filters in one group")
        _check_index(len(self.filter_groups), "filter groups")
        return replace(self, filter_groups=(*self.filter_groups, tuple(filters)))

    def sort(self, field: str, direction: str = "ASC") -> SearchCriteria:
        """Add a sort order; ``direction`` is sent upper case (``ASC``/``DESC``)."""
        direction = direction.upper()
        if direction not in ("ASC", "DESC"):
            raise ValueError(f"sort direction must be ASC or DESC, not {direction!r}")
        _check_index(len(self.sort_orders), "sort orders")
        return replace(self, sort_orders=(*self.sort_orders, (field, direction)))

    def page(self, size: int, current: int = 1) -> SearchCriteria:
        """Set ``pageSize`` (1..300) and ``currentPage`` (1-based)."""
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise ValueError(
                f"pageSize must be between 1 and {MAX_PAGE_SIZE}, not {size}"
            )
        if current < 1:
            raise ValueError(f"currentPage starts at 1, not {current}")
        return replace(self, page_size=size, current_page=current)

    def params(self) -> list[tuple[str, str]]:
        """The query parameters, unencoded (``query()`` encodes them for sending)."""
        out: list[tuple[str, str]] = []
        for g, group in enumerate(self.filter_groups):
            for f, flt in enumerate(group):
                base = f"{_PREFIX}[filter_groups][{g}][filters][{f}]"
                out.append((f"{base}[field]", flt.field))
                out.append((f"{base}[value]", _render(flt.value)))
                out.append((f"{base}[condition_type]", flt.condition_type))
        for i, (field, direction) in enumerate(self.sort_orders):
            out.append((f"{_PREFIX}[sortOrders][{i}][field]", field))
            out.append((f"{_PREFIX}[sortOrders][{i}][direction]", direction))
        out.append((f"{_PREFIX}[pageSize]", str(self.page_size)))
        out.append((f"{_PREFIX}[currentPage]", str(self.current_page)))
        return out

    def query(self) -> str:
        """The encoded query string to send as is (see the module docstring)."""
        return encode_query(self.params())


def encode_query(params: Iterable[tuple[str, str]]) -> str:
    """Percent-encode query pairs for a signed Magento call: space ``%20``, ``[`` ``%5B``.

    Only RFC 3986 unreserved characters stay literal, so no ``+`` is ever sent.
    """
    return urlencode(list(params), quote_via=quote, safe="")


def _check_index(index: int, what: str) -> None:
    if index > MAX_INDEX:
        raise ValueError(
            f"too many {what}: searchCriteria indexes must stay below 10 "
            "(OAuth signatures break when [10] sorts before [2]); split the query"
        )
