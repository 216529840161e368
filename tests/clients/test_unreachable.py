"""An unreachable host says which kind it is, on loopback only: refused, DNS, TLS, timeout.

Each kind is triggered for real: a closed port, a ``.invalid`` name, a plain-HTTP server
spoken to with https://, a socket that never answers. ``.invalid`` names are refused
in-process as RFC 6761 asks a resolver to (``no_dns_for_invalid``), so no query leaves
this host whatever resolver it has; every other name goes to the real resolver.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
import requests

from cancelsync.clients.http import RetryPolicy, Transport
from cancelsync.errors import ApiError, OutcomeUnknownError, RetryableApiError

# Every case must fail fast: a hang here is the bug (a cycle stuck on one host).
FAST = 5.0


@pytest.fixture
def plain_http_port() -> Iterator[int]:
    """A loopback server that answers plain HTTP to whatever arrives (TLS included)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(1)
                try:
                    conn.recv(4096)
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(2)
    server.close()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback socket that accepts connections (kernel backlog) and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    yield server.getsockname()[1]
    server.close()


def _get(url: str, *, write: bool = False, timeout: float = 0.5) -> ApiError:
    transport = Transport(
        requests.Session(),
        platform="magento",
        base_url=url,
        timeout=timeout,
        retry=RetryPolicy(attempts=1, sleep=lambda _: None),
    )
    started = time.monotonic()
    with pytest.raises((RetryableApiError, OutcomeUnknownError)) as info:
        transport.request(
            "POST" if write else "GET", "/rest/V1/x", lambda r: None, write=write
        )
    assert time.monotonic() - started < FAST
    assert isinstance(info.value, ApiError)
    return info.value


def test_refused_names_the_kind_the_port_and_the_fix(closed_port: int) -> None:
    """A closed port is "connection refused", with host:port and where to look."""
    exc = _get(f"http://127.0.0.1:{closed_port}")

    assert isinstance(exc, RetryableApiError)
    assert f"cannot reach 127.0.0.1:{closed_port}: connection refused" in exc.message
    assert exc.hint is not None
    assert "magento.base_url" in exc.hint


def test_refused_write_was_not_sent(closed_port: int) -> None:
    """A refused write keeps its "not sent" outcome and says why."""
    exc = _get(f"http://127.0.0.1:{closed_port}", write=True)

    assert isinstance(exc, OutcomeUnknownError)
    assert exc.refused
    assert "connection refused" in exc.message
    assert "the write was not sent" in exc.message


@pytest.mark.usefixtures("no_dns_for_invalid")
def test_unknown_name_is_a_dns_failure() -> None:
    """A name that does not resolve is a DNS failure naming the host, quickly."""
    exc = _get("https://shop.invalid")

    assert "cannot reach shop.invalid:443: DNS failure" in exc.message
    assert "shop.invalid was not resolved" in exc.message
    assert exc.hint is not None
    assert "typo" in exc.hint


def test_https_to_a_plain_http_port_is_a_tls_error(plain_http_port: int) -> None:
    """https:// to a plain-HTTP server is a TLS handshake error, not "unreachable"."""
    exc = _get(f"https://127.0.0.1:{plain_http_port}")

    assert f"TLS error with 127.0.0.1:{plain_http_port}" in exc.message
    assert "handshake failed" in exc.message
    assert exc.hint is not None
    assert "http://" in exc.hint


def test_a_server_that_never_answers_is_a_timeout(silent_port: int) -> None:
    """An accepted connection with no answer is a timeout naming the wait."""
    exc = _get(f"http://127.0.0.1:{silent_port}", timeout=0.3)

    assert f"timeout: 127.0.0.1:{silent_port} accepted the connection" in exc.message
    assert "0.3s" in exc.message
    assert exc.hint is not None
    assert "timeout_seconds" in exc.hint


def test_the_resolution_is_said_once(closed_port: int) -> None:
    """``str`` carries the hint once; ``summary`` leaves it to the caller."""
    exc = _get(f"http://127.0.0.1:{closed_port}")

    assert str(exc).count("Resolution:") == 1
    assert "Resolution" not in exc.summary
    assert exc.summary.startswith("magento: cannot reach")
