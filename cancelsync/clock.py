"""Injectable clocks: the only place the worker (and the sandbox) asks what time it is.

Rules and the engine take ``ctx.now`` from a ``Clock``; tests use ``FakeClock`` instead of
patching ``datetime``.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Something that knows the current time as an aware UTC datetime."""

    def now(self) -> datetime: ...


class SystemClock:
    """The real wall clock (UTC)."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FakeClock:
    """A clock that only moves when told to; thread-safe so simulators can share it."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 11, 1, 12, 0, 0, tzinfo=UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> datetime:
        with self._lock:
            self._now += timedelta(seconds=seconds)
            return self._now

    def set(self, when: datetime) -> None:
        with self._lock:
            self._now = when


def to_epoch(when: datetime) -> int:
    """Unix seconds of an aware datetime."""
    return int(when.timestamp())


def from_epoch(seconds: float) -> datetime:
    """Aware UTC datetime from Unix seconds."""
    return datetime.fromtimestamp(seconds, UTC)
