"""The instance lock: one cancelsync process per database at a time (exit code 75 otherwise).

An advisory ``flock`` on ``<database>.lock``; the kernel drops it when the process dies, so a
crash never leaves a stale lock behind. A lock file this user cannot open (an admin ran a
command as root once) is a ``SetupError`` saying to run commands as the service user.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from cancelsync.errors import LockHeldError, SetupError
from cancelsync.files import ensure_folder, not_writable


class InstanceLock:
    def __init__(self, database: Path) -> None:
        self.path = Path(str(database) + ".lock")
        self._fd: int | None = None

    def acquire(self) -> InstanceLock:
        ensure_folder(self.path.parent)
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)
        except PermissionError:
            raise not_writable(self.path) from None
        except IsADirectoryError:
            raise SetupError(f"the lock file {self.path} is a folder. Resolution: "
                             "remove it or choose another worker.database") from None  # fmt: skip
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LockHeldError(
                f"another cancelsync instance holds {self.path}. Resolution: wait for it to "
                "finish (cron) or stop the service before running this command"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> InstanceLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


@contextmanager
def refresh_lock(database: Path) -> Iterator[None]:
    """Serialize TikTok token refreshes across processes (``<database>.tokens.lock``).

    TikTok rotates the refresh token on use, so two processes (the service, a `check`,
    `reasons`, `connect`) refreshing one pair at once would leave one of them holding a
    dead token. The holder re-reads the stored pair after taking the lock and refreshes
    only if no one else did meanwhile (``TokenManager.refresh``). Blocking: a refresh
    takes seconds at most.
    """
    path = Path(str(database) + ".tokens.lock")
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
