"""Shared fixtures: a fake clock, an in-memory store, config files, env and log hygiene."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Iterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest
import structlog
import structlog.testing

from cancelsync.clock import FakeClock
from cancelsync.sandbox.common import free_port
from cancelsync.store import Store

# The smallest config `load_config` accepts: literal credentials, one store, no env vars.
MINIMAL_CONFIG = """\
[magento]
base_url = "https://magento.test"
consumer_key = "ck-minimal"
consumer_secret = "cs-minimal-secret"
access_token = "at-minimal-token"
access_token_secret = "ats-minimal-secret"

[[stores]]
name = "us-main"
app_key = "app-key-minimal"
app_secret = "app-secret-minimal"
"""

# Variables the example config and the CLI read; cleared so the host cannot leak in.
_ENV_VARS = (
    "CANCELSYNC_CONFIG", "MAGENTO_CONSUMER_KEY", "MAGENTO_CONSUMER_SECRET",
    "MAGENTO_ACCESS_TOKEN", "MAGENTO_ACCESS_TOKEN_SECRET", "MAGENTO_TOKEN", "TTS_APP_KEY",
    "TTS_APP_SECRET", "TTS_ACCESS_TOKEN", "TTS_REFRESH_TOKEN",
)  # fmt: skip

WriteConfig = Callable[..., Path]


@pytest.fixture
def clock() -> FakeClock:
    """A clock that only moves when the test says so (2026-11-01 12:00 UTC)."""
    return FakeClock()


@pytest.fixture
def store() -> Iterator[Store]:
    """A migrated in-memory store, closed after the test."""
    s = Store.memory()
    yield s
    s.close()


@pytest.fixture
def write_config() -> WriteConfig:
    """``write_config(folder, text=MINIMAL_CONFIG, name="cancelsync.toml") -> Path``."""

    def write(
        folder: Path, text: str = MINIMAL_CONFIG, name: str = "cancelsync.toml"
    ) -> Path:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Remove the config-related environment variables; returns monkeypatch to set some."""
    for name in _ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def logs() -> Iterator[list[MutableMapping[str, Any]]]:
    """Structlog events logged during the test (``structlog.testing.capture_logs``)."""
    with structlog.testing.capture_logs() as captured:
        yield captured


@pytest.fixture(autouse=True)
def reset_logging() -> Iterator[None]:
    """Undo ``configure_logging`` (structlog config and root handlers) after every test: a
    CLI run at ``--log-level warning`` must not hide the next test's captured events."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.reset_defaults()
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.contextvars.clear_contextvars()


@pytest.fixture
def closed_port() -> int:
    """A 127.0.0.1 port nothing listens on (bound, then released)."""
    return free_port()


@pytest.fixture
def no_dns_for_invalid(monkeypatch: pytest.MonkeyPatch) -> None:
    """``*.invalid`` never resolves and never reaches a DNS server (RFC 6761 §6.4)."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kw: Any) -> Any:
        if isinstance(host, str) and host.rstrip(".").endswith(".invalid"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
