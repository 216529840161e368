"""Keyset paging over a Magento search endpoint.

``currentPage`` cannot be trusted (a page past the end returns the last page again), so
every request filters ``entity_id gt <cursor>``, sorts ``entity_id ASC`` and asks for
page 1. Paging stops on a short page, or when a page holds everything ``total_count``
announced; a page that does not move the cursor (the store ignored the filter, so the last
id does not grow) raises ``DataError`` instead of looping, and so does a search still
going after ``MAX_PAGES`` pages. A cursor scan stops itself before that
(``cancelsync.sync.scan.MAX_SCAN_PAGES``) and resumes from its cursor next cycle; every
other search (one order's memos, a batch of ids, the overlap re-scan) is far shorter.

A row that cannot be read in a ``tolerant`` search is kept in ``Page.unreadable`` with its
``entity_id`` when readable; when not, its ``position`` is the id of the readable row just
before it (rows come sorted by ``entity_id``), or the page's cursor: a cursor held there
reads the row again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from cancelsync.clients.magento.search import MAX_PAGE_SIZE, SearchCriteria
from cancelsync.errors import DataError
from cancelsync.models import Page, Unreadable

T = TypeVar("T")
Search = Callable[[SearchCriteria], tuple[list[Any], int | None]]
MAX_PAGES = 200


def keyset_pages(
    search: Search,
    base: SearchCriteria,
    convert: Callable[[Any], T],
    key: Callable[[T], int],
    *,
    after_entity_id: int = 0,
    page_size: int = 100,
    label: str = "magento search",
    tolerant: bool = False,
) -> Iterator[Page[T]]:
    """Yield pages of ``convert(row)`` with ``key > cursor``, ascending and deduped.

    Args:
        search: runs one search and returns ``(rows, total_count)``.
        base: the filters every page shares (the cursor filter is added here).
        key: the ``entity_id`` of a converted row.
        tolerant: a row ``convert`` cannot read goes to ``Page.unreadable`` (with its
            ``entity_id`` when readable) instead of failing the page. Only for callers
            that report unreadable rows: dropping one silently would lose an event.
    """
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
    cursor = after_entity_id
    for _page in range(MAX_PAGES):
        criteria = (
            base.where("entity_id", cursor, "gt")
            .sort("entity_id", "ASC")
            .page(page_size, 1)
        )
        raw_rows, total = search(criteria)
        fresh: dict[int, T] = {}
        unreadable: dict[int, Unreadable] = {}
        unkeyed: list[Unreadable] = []
        below = cursor  # the last readable id so far: an id-less row comes after it
        for raw in raw_rows:
            raw_id = _raw_id(raw)
            try:
                record = convert(raw)
            except DataError as exc:
                if not tolerant:
                    raise
                if raw_id is None:
                    unkeyed.append(Unreadable(None, str(exc), position=below))
                elif raw_id > cursor:
                    unreadable.setdefault(
                        raw_id, Unreadable(str(raw_id), str(exc), position=raw_id - 1)
                    )
                if raw_id is not None:
                    below = max(below, raw_id)
                continue
            below = max(below, key(record))
            if key(record) > cursor:
                fresh.setdefault(key(record), record)
        skipped_to = max(unreadable, default=cursor)
        if raw_rows and not fresh and not unkeyed and skipped_to <= cursor:
            raise DataError(
                f"{label}: a page after entity_id {cursor} returned only rows at or "
                "below it (the store ignored the entity_id filter); stopping instead "
                "of looping"
            )
        if not fresh and not unreadable and not unkeyed:
            return
        yield Page([fresh[k] for k in sorted(fresh)], [*unreadable.values(), *unkeyed])
        if total is not None and total <= len(raw_rows):
            return  # this page held every matching row
        if len(raw_rows) < page_size and total is None:
            return  # a short page is the last one
        # A full page, or a short one while total_count says more match (the store
        # caps pageSize below ours): move the cursor on.
        if max([*fresh, skipped_to]) <= cursor:
            raise DataError(
                f"{label}: a full page after entity_id {cursor} had no readable id "
                "above it; stopping instead of reading the same page again"
            )
        cursor = max([*fresh, skipped_to])
    raise DataError(
        f"{label}: still more rows after {MAX_PAGES} pages of {page_size}; stopping "
        "instead of paging on without end"
    )


def _raw_id(raw: Any) -> int | None:
    """The ``entity_id`` of a raw row, if even that much is readable."""
    value = raw.get("entity_id") if isinstance(raw, dict) else None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return None
