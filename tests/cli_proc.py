"""The real CLI as a child process (``python -m cancelsync``), for the never-a-traceback tests.

``cli()`` runs it to completion with a time limit and a clean environment. ``faulty()``
runs the same CLI with one fault patched in first (a full disk, a database turned read-only
after a refund, a bug), through ``tests/cli_faults.py``. ``unprivileged()`` is the command
prefix that makes file permissions bite: as root (CI containers) the child keeps uid 0
but loses the capabilities that ignore permissions (``setpriv``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
# Variables a config may read: cleared so the host cannot leak into a child.
SECRET_VARS = (
    "CANCELSYNC_CONFIG", "MAGENTO_CONSUMER_KEY", "MAGENTO_CONSUMER_SECRET",
    "MAGENTO_ACCESS_TOKEN", "MAGENTO_ACCESS_TOKEN_SECRET", "MAGENTO_TOKEN", "TTS_APP_KEY",
    "TTS_APP_SECRET", "TTS_ACCESS_TOKEN", "TTS_REFRESH_TOKEN", "CREDENTIALS_DIRECTORY",
)  # fmt: skip


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The test process's environment without config variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in SECRET_VARS}
    env.update(extra or {})
    return env


def cli(
    *args: str | Path,
    prefix: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m cancelsync ARGS`` to completion; text output captured."""
    return subprocess.run(  # noqa: S603 - fixed argument lists, no shell
        [*prefix, sys.executable, "-m", "cancelsync", *map(str, args)],
        capture_output=True, text=True, timeout=timeout, check=False,
        env=child_env(env), stdin=subprocess.DEVNULL,
    )  # fmt: skip


def faulty(
    fault: str, *args: str | Path, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run the CLI with ``fault`` (see ``tests/cli_faults.py``) patched in."""
    return subprocess.run(  # noqa: S603 - fixed argument lists, no shell
        [sys.executable, str(TESTS / "cli_faults.py"), fault, *map(str, args)],
        capture_output=True, text=True, timeout=timeout, check=False,
        env=child_env(), stdin=subprocess.DEVNULL,
    )  # fmt: skip


def unprivileged() -> list[str]:
    """A prefix under which file permissions apply to the child (skips when impossible)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: permissions cannot be tested")
    return [
        setpriv,
        "--bounding-set=-dac_override,-dac_read_search,-fowner,-chown",
        "--",
    ]


def assert_clean_failure(
    result: subprocess.CompletedProcess[str], code: int, *words: str
) -> str:
    """``result`` exited ``code`` with a message holding ``words`` and no traceback."""
    err = result.stderr
    assert "Traceback" not in err, err
    assert result.returncode == code, (result.returncode, err[-2000:])
    for word in words:
        assert word in err, (word, err)
    return err
