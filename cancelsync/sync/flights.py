"""Bounded concurrency for the engine: up to ``worker.max_in_flight`` actions in flight.

An action (one event's exactly-once protocol, ``Engine.apply``) is written as a generator
that *yields* each remote call (a send, a re-read, a re-plan's lookup, a backoff sleep) as
a thunk and receives its result or its exception back. ``Flights`` runs the thunks in a
thread pool and resumes each generator **on the engine's thread**, so:

- **SQLite stays on one thread.** Every ledger row (``pending`` before the call, the outcome
  after it) is written by the generator on the engine's thread, between two remote calls,
  exactly in the order the protocol says; worker threads only talk HTTP. (The store's
  connection is never shared with a worker thread, so no lock is needed around it, and an
  engine transaction can never be interleaved with another thread's statements. The one
  store access a remote call can make, reading or rotating a TikTok token, goes through a
  connection of the worker thread's own: ``cancelsync.wiring``.)
- **Actions of one order stay in order.** Each action carries its orders' keys
  (``tiktok:<id>``, ``magento:<id>``); ``wait_for`` returns once no action of those orders
  is in flight, and a direction calls it *before* it reads and decides the next event of
  an order, so that event sees what the previous one did.
- **At most ``max_in_flight`` actions** are started; the next one waits for a free slot.
- **A cursor moves after the actions below it are recorded**: a direction calls ``drain``
  before it moves one (direction B once, at the end of its window, so a page's writes
  overlap the next page's reads; direction A after each keyset page).

Reads overlap too: ``together`` runs a page's independent batched reads at once, and
``read_ahead`` fetches the next listing page while the current one is worked on (remote
calls only; what they return is used on the engine's thread).

With ``max_in_flight = 1`` (and in a dry run) no thread is used: each thunk runs inline
the moment it is yielded, exactly the sequential protocol.

An error escaping an action (``AuthError``, the outage streak, a bug) surfaces from the
next ``wait_for``/``drain`` on the engine's thread; ``closing`` then lets the other actions
in flight finish and record their outcomes before the error ends the cycle.
"""

from __future__ import annotations

import contextvars
import queue
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import structlog

log = structlog.get_logger("cancelsync.sync")

T = TypeVar("T")
Thunk = Callable[[], Any]
_END: Any = object()  # the end of a read-ahead iterator
# An action: yields remote calls, receives each one's result (or its exception).
Steps = Generator[Thunk, Any, None]


@dataclass(eq=False)
class _Flight:
    keys: frozenset[str]
    steps: Steps
    future: Future[Any] | None = field(default=None, repr=False)


class Flights:
    """The actions in flight of one store's cycle (see the module docstring)."""

    def __init__(self, max_in_flight: int) -> None:
        self.max_in_flight = max(1, max_in_flight)
        self._flying: list[_Flight] = []
        self._pool: ThreadPoolExecutor | None = None
        self._finished: queue.SimpleQueue[_Flight] = queue.SimpleQueue()

    def __len__(self) -> int:
        return len(self._flying)

    def launch(self, keys: Iterable[str], steps: Steps) -> None:
        """Start an action: at once and inline when only one may fly, else after the
        actions of the same orders and once a slot is free."""
        if self.max_in_flight == 1:
            _run_inline(steps)
            return
        flight = _Flight(frozenset(keys), steps)
        self.wait_for(flight.keys)
        self._flying.append(flight)
        self._resume(flight, None, None)

    def wait_for(self, keys: Iterable[str]) -> None:
        """Return once no action of these orders (keys) is in flight and a slot is free.

        A direction calls it before it enters the next event's scope, so that an error
        surfacing from another action here is never taken for that event's."""
        wanted = frozenset(keys)
        while self._flying and (
            len(self._flying) >= self.max_in_flight
            or any(f.keys & wanted for f in self._flying)
        ):
            self._pump()

    def drain(self) -> None:
        """Return once every action in flight has finished and recorded its outcome."""
        while self._flying:
            self._pump()

    @contextmanager
    def closing(self) -> Iterator[Flights]:
        """Drain on the way out; when already leaving with an error, let the others
        finish (their own errors are logged, the first one is raised), then stop the
        threads."""
        try:
            yield self
            self.drain()
        except BaseException:
            self._drain_quietly()
            raise
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None

    def together(self, *thunks: Thunk) -> list[tuple[Any, BaseException | None]]:
        """Run independent remote reads at once (one at a time when only one may fly);
        each one's ``(result, None)`` or ``(None, error)``, in order."""
        if self.max_in_flight == 1 or len(thunks) < 2:
            return [_outcome(thunk) for thunk in thunks]
        pool = self._threads()
        futures = [pool.submit(contextvars.copy_context().run, t) for t in thunks]
        return [_outcome(f.result) for f in futures]

    def read_ahead(self, items: Iterator[T], *, limit: int) -> Iterator[T]:
        """Yield ``items`` (at most ``limit``), fetching the next one in a thread while
        the caller works on this one; one at a time when only one may fly. The caller
        gets each item, or its error, in order, as if it had fetched it itself."""
        if self.max_in_flight == 1:
            for count, item in enumerate(items, start=1):
                yield item
                if count >= limit:
                    return
            return

        def fetch() -> Any:
            return next(items, _END)

        with ThreadPoolExecutor(1, thread_name_prefix="cancelsync-read") as reader:
            context = contextvars.copy_context()
            ahead = reader.submit(context.run, fetch)
            for count in range(1, limit + 1):
                item = ahead.result()
                if item is _END:
                    return
                if count < limit:
                    ahead = reader.submit(context.run, fetch)
                yield item

    def _drain_quietly(self) -> None:
        while self._flying:
            try:
                self._pump()
            except Exception:  # the first error is already on its way: log the others
                log.exception("action.error_while_stopping")

    def _pump(self) -> None:
        """Wait for one remote call to finish and carry its action on to the next."""
        flight = self._finished.get()
        future = flight.future
        if future is None:  # pragma: no cover - a flight is queued only once submitted
            raise RuntimeError("a finished flight without its call")
        try:
            value, error = future.result(), None
        except BaseException as exc:  # noqa: BLE001 - handed to the action, which decides
            value, error = None, exc
        self._resume(flight, value, error)

    def _resume(self, flight: _Flight, value: Any, error: BaseException | None) -> None:
        """Run the action on this thread up to its next remote call, and send that call
        to a worker thread (with this context: log bindings, request observers)."""
        try:
            thunk = (
                flight.steps.send(value) if error is None else flight.steps.throw(error)
            )
        except StopIteration:
            self._flying.remove(flight)
            return
        except BaseException:
            self._flying.remove(flight)
            raise
        context = contextvars.copy_context()
        flight.future = self._threads().submit(context.run, thunk)
        flight.future.add_done_callback(lambda _f: self._finished.put(flight))

    def _threads(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                self.max_in_flight, thread_name_prefix="cancelsync-call"
            )
        return self._pool


def _outcome(thunk: Thunk) -> tuple[Any, BaseException | None]:
    try:
        return thunk(), None
    except Exception as exc:  # noqa: BLE001 - handed back to the caller, which decides
        return None, exc


def _run_inline(steps: Steps) -> None:
    """Drive an action on this thread, each remote call as it is yielded."""
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            thunk = steps.send(value) if error is None else steps.throw(error)
        except StopIteration:
            return
        value, error = None, None
        try:
            value = thunk()
        except BaseException as exc:  # noqa: BLE001 - handed to the action, which decides
            error = exc
