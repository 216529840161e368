"""A stop request (SIGTERM/SIGINT) and the waits it cuts short.

``run`` and ``run --once`` stop between events: the action in flight finishes, and no new
attempt starts after the request. A retry's backoff (a server's ``Retry-After: 30``) or the
engine's wait before re-sending a refused write must not hold the stop up, so those waits
are ``StopSignal.sleep``: it returns early, raising ``StopRequested``, the moment a stop is
requested, from any thread.

The signal handler only sets a flag and writes one byte to a pipe that the waits
``select()`` on. It takes no lock: a handler that took a lock the interrupted code held (a
``threading.Event``'s, a log stream's) would deadlock the process it was meant to stop.
"""

from __future__ import annotations

import contextlib
import os
import select
import weakref

from cancelsync.sync.engine import StopRequested

__all__ = ["StopRequested", "StopSignal"]


class StopSignal:
    """Like ``threading.Event`` (``set``, ``is_set``, ``wait``), safe to set from a signal
    handler; ``sleep`` is the retry policy's stop-aware wait."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)
        weakref.finalize(self, _close, self._read, self._write)
        self._set = False

    def set(self) -> None:
        """Request the stop (idempotent; safe in a signal handler)."""
        if self._set:
            return
        self._set = True
        with contextlib.suppress(OSError):  # a full pipe is readable already
            os.write(self._write, b"s")

    def is_set(self) -> bool:
        return self._set

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until a stop is requested or ``timeout`` seconds pass; True if requested."""
        if not self._set:
            # A signal interrupting select() runs its handler, which makes the pipe
            # readable, and select() (retried by Python, PEP 475) returns at once.
            select.select([self._read], [], [], timeout)
        return self._set

    def sleep(self, seconds: float) -> None:
        """Sleep ``seconds``; raise ``StopRequested`` instead once a stop is requested."""
        if self.wait(max(0.0, seconds)):
            raise StopRequested


def _close(*fds: int) -> None:
    for fd in fds:
        os.close(fd)
