"""How far a cursor scan may move its cursor: the page cap and holds (issue 14).

Two things keep a direction's scan from moving its cursor to the end of what it asked for.

**The page cap.** A scan reads at most ``MAX_SCAN_PAGES`` pages per cycle: 200 x 50 TikTok
cancellations (or orders) = 10,000, 200 x 100 Magento credit memos = 20,000, more than a
shop sees in a day, so only a backlog or a broken server reaches it. Without it a search
that hands out a fresh ``next_page_token`` forever would hold the worker's lock forever. A
capped scan logs ``scan.capped`` (a warning: nothing is wrong with the events), moves the
cursor only as far as it read, and the next cycle goes on from there (minus the overlap).
The clients refuse to page past the same number (``DataError``), so a lookup that is not a
cursor scan cannot loop either. (A TikTok window re-reads ``overlap_seconds`` behind its
cursor, so a capped scan only makes progress while fewer than 10,000 records share one
``overlap_seconds`` stretch; a Magento keyset always makes progress.)

**Holds: the cursor never passes an unrecorded item.** An item the mapper cannot read and
whose id is unreadable too has no ledger key, so nothing can remember it but the cursor.
Such an item holds the cursor at its position (a TikTok ``update_time``; for a Magento memo
the ``entity_id`` just before it) or, when even that is unreadable, where its page began.
It is re-read every cycle, and every cycle reports it (an error log line and a failure:
exit 1) until it is fixed at the source, while every other item is handled as usual; the
cycle's counts carry ``held_at.<stream>`` (the held position) for ``status``.

*When it is never fixed*: each cycle re-reads everything after the held position, which
grows until a scan from there no longer reaches the end within the page cap. Holding on
then would stall every newer item, so **a capped scan whose hold would keep the cursor
where it already is releases the hold**: the cursor moves to where the scan got, the cycle
logs ``scan.hold_released`` at error level with the item's error and counts
``hold_released`` (a failure, exit 1). From then on the item is no longer re-read; the log
line is what a person has to go on. With a daily volume far below the cap this takes
weeks of failing cycles, each of them exiting 1.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import TypeVar

from cancelsync.directions import Direction
from cancelsync.models import Unreadable
from cancelsync.sync.engine import Engine

MAX_SCAN_PAGES = 200

P = TypeVar("P")


def unkeyed(page: object) -> list[Unreadable]:
    """A page's unreadable items without an id: no ledger key can record them."""
    return [bad for bad in getattr(page, "unreadable", ()) if bad.item_id is None]


class CursorScan:
    """One cycle's scan of one direction's stream: pages read, the cap, the holds.

    Args:
        start: where the scan begins reading (a window's start, a keyset cursor).
        stored: the cursor position stored before this cycle (``None``: none yet);
            a hold at or below it would stop the cursor from moving at all.
        stream: the cursor stream scanned, when not the direction's own.
    """

    def __init__(
        self,
        engine: Engine,
        direction: Direction,
        *,
        start: int,
        stored: int | None,
        stream: str | None = None,
    ) -> None:
        self.engine = engine
        self.direction = direction
        self.stream = stream or direction.stream
        self.start = start
        self.stored = stored
        self.capped = False
        self.reached = start  # the furthest position read by the current part
        self._limit: float = math.inf  # where a capped part stopped
        self._hold: int | None = None
        self._held: list[Unreadable] = []

    def pages(self, pages: Iterable[P], what: str) -> Iterator[P]:
        """Yield at most ``MAX_SCAN_PAGES`` of ``pages`` (one part of the scan: a
        direction may scan two searches over one window)."""
        self.reached = self.start
        # With actions in flight, the next page is fetched while this one is worked on.
        ahead = self.engine.flights.read_ahead(iter(pages), limit=MAX_SCAN_PAGES)
        for count, page in enumerate(ahead, start=1):
            yield page
            if count >= MAX_SCAN_PAGES:
                self.capped = True
                self._limit = min(self._limit, self.reached)
                self.engine.log.warning(
                    "scan.capped", stream=self.stream, what=what,
                    pages=count, reached=self.reached,
                )  # fmt: skip
                return

    def read(self, positions: Iterable[int], unrecorded: Iterable[Unreadable]) -> None:
        """One page read: its items' positions, and the items no ledger row records
        (each holds the cursor at its position, else where the page began)."""
        page_start = self.reached
        for bad in unrecorded:
            at = bad.position if bad.position is not None else page_start
            self._hold = at if self._hold is None else min(self._hold, at)
            self._held.append(bad)
        self.reached = max([self.reached, *positions])

    def end(self, end: int) -> int:
        """The end of the window a later part of the scan may cover: ``end``, or just
        past where a capped part stopped."""
        return end if not self.capped else min(end, int(self._limit) + 1)

    @property
    def released(self) -> bool:
        """The hold gives way: the scan was capped and holding would not move the
        cursor at all (see the module docstring)."""
        return (
            self.capped
            and self._hold is not None
            and self.stored is not None
            and self._hold <= self.stored
        )

    def target(self, end: int) -> int:
        """Where the cursor may move now, the scan having read up to ``end``."""
        position = min(end, self._limit)
        if self._hold is not None and not self.released:
            position = min(position, self._hold)
        return int(position)

    def finish(self, end: int) -> int:
        """``target(end)``, with the cap and the holds reported once for the cycle."""
        report = self.engine.report
        stream = self.stream
        if self.capped:
            report.counts["scan_capped"] += 1
        if self._hold is not None and self.released:
            report.counts["hold_released"] += 1
            report.failures += 1
            self.engine.log.error(
                "scan.hold_released", stream=stream, held_at=self._hold,
                errors=[bad.error for bad in self._held],
                reason="the capped scan could not get past the held position; the "
                "unreadable item is no longer re-read",
            )  # fmt: skip
        elif self._hold is not None:
            report.counts[f"held_at.{stream}"] = self._hold
            self.engine.log.warning(
                "scan.cursor_held", stream=stream, held_at=self._hold,
                items=len(self._held),
            )  # fmt: skip
        return self.target(end)
