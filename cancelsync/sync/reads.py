"""One page's batched reads: one call per kind of record for the whole page.

A direction reads what a page's events need (Magento orders, their credit memos, TikTok
order details) in one batched call per kind (``in`` filters, at most 50 ids per call, the
calls of a larger page at once), not one call per event. ``BatchedReads`` keeps those answers for the page:

- an id the batch answered is served from it, no further call;
- an id the batch did not return is *absent* (``get`` gives ``None``): the batch asked for
  it, so the platform has no such record;
- when the batch itself failed (one bad record can fail a whole batch), each id is read
  alone when it is asked for, so the failure lands on the event that causes it and the
  rest of the page goes on;
- ``forget`` drops an id after an event wrote to that record: the next event of the same
  order reads it again, alone, and decides on what the write left behind.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from functools import partial
from typing import Generic, TypeVar

from cancelsync.errors import ApiError, AuthError, DataError
from cancelsync.sync.engine import Engine

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
BATCH = (
    50  # ids a call: TikTok's order detail takes 50, Magento's `in` filters the same
)


class BatchedReads(Generic[K, V]):
    """A page's answers of one batched read, by id (see the module docstring).

    Args:
        what: a label for the log line of a failed batch (``"magento orders"``).
        read_many: one batched read; every id it leaves out is absent.
        read_one: reads one id alone (``None``: absent); its errors are the event's.
    """

    def __init__(
        self,
        engine: Engine,
        what: str,
        read_many: Callable[[list[K]], Mapping[K, V]],
        read_one: Callable[[K], V | None],
    ) -> None:
        self._engine = engine
        self._what = what
        self._read_many = read_many
        self._read_one = read_one
        self._known: dict[K, V | None] = {}  # None: absent

    def prefetch(self, ids: Iterable[K]) -> None:
        """Read every id not known yet, ``BATCH`` ids a call, the calls at once (with
        actions in flight); a failed call is only logged (its ids are then read alone
        on ``get``)."""
        wanted = [i for i in dict.fromkeys(ids) if i not in self._known]
        chunks = [wanted[i : i + BATCH] for i in range(0, len(wanted), BATCH)]
        outcomes = self._engine.flights.together(
            *(partial(self._read_many, chunk) for chunk in chunks)
        )
        for chunk, (found, error) in zip(chunks, outcomes, strict=True):
            if error is not None:
                if isinstance(error, AuthError) or not isinstance(
                    error, ApiError | DataError
                ):
                    raise error
                self._engine.log.warning(
                    "page.batch_read_failed", what=self._what, ids=len(chunk),
                    error=str(error), error_type=type(error).__name__,
                )  # fmt: skip
                continue
            for i in chunk:
                self._known[i] = found.get(i)

    def get(self, key: K) -> V | None:
        """The record of ``key``: from the batch, else read alone (``None``: absent)."""
        if key not in self._known:
            self._known[key] = self._read_one(key)
        return self._known[key]

    def cached(self, key: K) -> V | None:
        """The record of ``key`` if a read already returned it; never reads."""
        return self._known.get(key)

    def put(self, key: K, value: V) -> None:
        """Keep a record another read of this page returned whole."""
        self._known[key] = value

    def forget(self, key: K) -> None:
        """Drop ``key``: it was written to, so its next reader reads it again."""
        self._known.pop(key, None)

    def clear(self) -> None:
        self._known.clear()
