"""What to tell the user when a file or folder cancelsync needs cannot be used.

The database, its ``-wal``/``-shm`` files and the lock live in one folder that only the user
cancelsync runs as writes (``cancelsync`` on a server). The usual way to break that is an
admin running one command as root: the files it creates then belong to root. Each problem
becomes a one-line ``SetupError`` (exit 2) naming the path and the fix, never a traceback.
"""

from __future__ import annotations

import os
import pwd
import stat
from pathlib import Path

from cancelsync.errors import SetupError

SERVICE_USER = "cancelsync"
KEY = "worker.database"


def user_name(uid: int) -> str:
    """The login name of ``uid`` (``uid N`` when it has none)."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def ensure_folder(folder: Path) -> None:
    """Create ``folder`` and its parents, or raise ``SetupError`` saying why not."""
    if folder.is_dir():
        return
    blocker = file_in_the_way(folder)
    if blocker is not None:
        raise SetupError(f"{KEY}: {blocker} is a file, not a folder. Resolution: point "
                         f"{KEY} at a file inside a folder")  # fmt: skip
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except PermissionError:
        raise not_writable(folder) from None
    except OSError as exc:
        raise SetupError(f"{KEY}: cannot create the folder {folder}: "
                         f"{exc.strerror or exc}") from None  # fmt: skip


def file_in_the_way(path: Path) -> Path | None:
    """The nearest existing ancestor of ``path`` when it is not a folder, else None."""
    for parent in path.parents if not path.exists() else (path, *path.parents):
        try:
            mode = parent.stat().st_mode
        except OSError:
            continue
        return None if stat.S_ISDIR(mode) else parent
    return None


def not_writable(path: Path) -> SetupError:
    """``path`` (a file of ours, or the folder it goes in) cannot be written by this user."""
    me = user_name(os.geteuid())
    # The file itself when it is the problem, else the folder it is (or goes) in.
    if path.exists() and (path.is_dir() or not os.access(path, os.W_OK)):
        target = path
    else:
        target = _existing_ancestor(path)
    try:
        info = target.stat()
    except OSError:
        return SetupError(f"cannot use {path}: permission denied for {me}. Resolution: "
                          f"{_run_as_hint(path)}")  # fmt: skip
    owner = user_name(info.st_uid)
    if (
        target == path
        and not stat.S_ISDIR(info.st_mode)
        and info.st_uid != os.geteuid()
    ):
        what = f"{path} belongs to {owner}, and this command runs as {me}"
    else:
        kind = "folder" if stat.S_ISDIR(info.st_mode) else "file"
        what = (f"cannot write {path}: the {kind} {target} is not writable by {me} "
                f"(owner {owner}, mode {stat.S_IMODE(info.st_mode):04o})")  # fmt: skip
    return SetupError(f"{what}. Resolution: {_run_as_hint(path)}")


def _run_as_hint(path: Path) -> str:
    # The database's family: the file, its -wal and -shm, and the .lock beside it.
    family = path.name.removesuffix(".lock").removesuffix("-wal").removesuffix("-shm")
    return (
        f"run every command as the service user (sudo -u {SERVICE_USER} cancelsync …); "
        f"files an admin created as root go back with `sudo chown {SERVICE_USER}: "
        f"{path.parent / family}*`; elsewhere, point {KEY} at a folder this user can write"
    )


def _existing_ancestor(path: Path) -> Path:
    for parent in path.parents:
        if parent.exists():
            return parent
    return Path("/")


def create_private(path: Path) -> None:
    """Create ``path`` empty with mode 0600 (whatever the umask) unless it exists, and make
    an existing one 0600; ``SetupError`` when this user cannot."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
        os.close(fd)
        os.chmod(path, 0o600)
    except PermissionError:
        raise not_writable(path) from None
    except IsADirectoryError:
        raise SetupError(f"{KEY}: {path} is a folder. Resolution: name a file "
                         "(e.g. …/cancelsync.db)") from None  # fmt: skip
