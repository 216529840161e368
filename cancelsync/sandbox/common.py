"""Shared plumbing of the sandbox simulators: request/response types, the request journal,
seeded fault injection and the threaded loopback HTTP front.

A simulator is a plain object with ``handle(SimRequest) -> SimResponse`` that keeps its own
in-memory state (no I/O). ``SimulatorServer`` serves it for real on 127.0.0.1 so that real
HTTP clients (requests, requests-oauthlib, our own clients) talk to it unchanged. Faults that
live at the transport level (status codes, delays, dropped connections, a write applied but its
response lost) are applied here, around ``handle``; faults that live in the data (duplicate
items across pages, out-of-order timestamps, late events) belong to each simulator.
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit


@dataclass(frozen=True)
class SimRequest:
    """One HTTP request as the simulator sees it."""

    method: str
    path: str  # decoded path, no query
    raw_path: str  # the request target's path exactly as sent (still percent-encoded)
    raw_query: str  # the query string exactly as sent
    query: tuple[
        tuple[str, str], ...
    ]  # decoded (key, value) pairs in order, repeats kept
    headers: dict[str, str]  # lower-cased names
    body: bytes
    host: str  # the Host header (OAuth 1.0a signs scheme://host + path)

    def query_dict(self) -> dict[str, str]:
        """Decoded query as a dict (the last value wins for repeated keys)."""
        return dict(self.query)

    def json(self) -> Any:
        """The body parsed as JSON (``None`` when empty); ``ValueError`` when invalid."""
        if not self.body:
            return None
        return json.loads(self.body.decode("utf-8"))


@dataclass
class SimResponse:
    """What the simulator answers."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(
        cls, payload: Any, status: int = 200, headers: dict[str, str] | None = None
    ) -> SimResponse:
        hdrs = {"Content-Type": "application/json"}
        hdrs.update(headers or {})
        return cls(status, json.dumps(payload).encode("utf-8"), hdrs)


class Simulator(Protocol):
    """The contract between a simulator's state machine and the HTTP front."""

    def handle(self, request: SimRequest) -> SimResponse: ...

    def endpoint_name(self, request: SimRequest) -> str:
        """A stable label such as ``"POST order/{id}/refund"`` used to target faults."""
        ...


# --------------------------------------------------------------------------- faults

FAULT_KINDS = ("status", "delay", "drop", "lost_response")


@dataclass
class Fault:
    """One injected fault.

    kind:
        ``status``: answer ``status`` (e.g. 500, 503, 429) with ``body`` and, when set, a
        ``Retry-After`` header, without touching state.
        ``delay``: sleep ``seconds`` before handling (with a short client timeout this is a
        timeout; the request is still applied afterwards, like a slow server).
        ``drop``: close the connection without answering and without applying the request.
        ``lost_response``: apply the request, then close the connection without answering
        (the crash-ambiguity case: the write happened, the caller cannot know).
    """

    kind: str
    status: int = 500
    body: bytes | None = None
    retry_after: float | None = None
    seconds: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(
                f"unknown fault kind {self.kind!r}; use one of {FAULT_KINDS}"
            )


@dataclass
class _FaultRule:
    pattern: re.Pattern[str]
    fault: Fault
    remaining: int | None  # "the next N calls"; None = by rate
    rate: float


class FaultPlan:
    """Seeded, deterministic fault injection, per endpoint, by rate or for the next N calls.

    Endpoints are matched against ``Simulator.endpoint_name`` with a regular expression
    (``fullmatch``); ``".*"`` targets every endpoint.
    """

    def __init__(self, seed: int = 0) -> None:
        self._rng = random.Random(seed)
        self._rules: list[_FaultRule] = []
        self._lock = threading.Lock()

    def next_calls(self, endpoint: str, fault: Fault, count: int = 1) -> None:
        """Inject ``fault`` into the next ``count`` calls matching ``endpoint``."""
        with self._lock:
            self._rules.append(_FaultRule(re.compile(endpoint), fault, count, 1.0))

    def at_rate(self, endpoint: str, fault: Fault, rate: float) -> None:
        """Inject ``fault`` into a seeded ``rate`` (0..1) of calls matching ``endpoint``."""
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be between 0 and 1")
        with self._lock:
            self._rules.append(_FaultRule(re.compile(endpoint), fault, None, rate))

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def pick(self, endpoint: str) -> Fault | None:
        """The fault to apply to this call, if any (consumes a "next N" slot)."""
        with self._lock:
            for rule in self._rules:
                if not rule.pattern.fullmatch(endpoint):
                    continue
                if rule.remaining is not None:
                    if rule.remaining <= 0:
                        continue
                    rule.remaining -= 1
                    return rule.fault
                if self._rng.random() < rule.rate:
                    return rule.fault
            return None


# --------------------------------------------------------------------------- journal


@dataclass(frozen=True)
class JournalEntry:
    """One request the server received, with what it answered (or the fault it injected)."""

    endpoint: str
    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    headers: dict[str, str]
    body: bytes
    status: int | None  # None when the connection was dropped
    fault: str | None
    at: float

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class Journal:
    """Thread-safe list of every request a simulator server received."""

    def __init__(self) -> None:
        self._entries: list[JournalEntry] = []
        self._lock = threading.Lock()

    def add(self, entry: JournalEntry) -> None:
        with self._lock:
            self._entries.append(entry)

    def entries(self, endpoint: str | None = None) -> list[JournalEntry]:
        """All entries, or those whose endpoint label fully matches the regex ``endpoint``."""
        with self._lock:
            items = list(self._entries)
        if endpoint is None:
            return items
        pat = re.compile(endpoint)
        return [e for e in items if pat.fullmatch(e.endpoint)]

    def count(self, endpoint: str) -> int:
        return len(self.entries(endpoint))

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


# --------------------------------------------------------------------------- server


def parse_request(
    method: str, target: str, headers: dict[str, str], body: bytes
) -> SimRequest:
    """Build a ``SimRequest`` from the raw request line parts."""
    from urllib.parse import unquote

    parts = urlsplit(target)
    pairs = tuple(parse_qsl(parts.query, keep_blank_values=True))
    return SimRequest(
        method=method.upper(),
        path=unquote(parts.path),
        raw_path=parts.path,
        raw_query=parts.query,
        query=pairs,
        headers=headers,
        body=body,
        host=headers.get("host", ""),
    )


class SimulatorServer:
    """Serves a simulator on loopback in a background thread (ThreadingHTTPServer).

    Usage::

        with SimulatorServer(sim) as server:
            requests.get(server.url + "/rest/V1/modules")
    """

    def __init__(
        self,
        simulator: Simulator,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: FaultPlan | None = None,
        journal: Journal | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.simulator = simulator
        self.faults = faults or FaultPlan()
        self.journal = journal or Journal()
        self._sleep = sleep
        self._httpd = ThreadingHTTPServer((host, port), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> SimulatorServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},  # so stop() returns quickly in tests
            name="sandbox-http",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if (
            self._thread is not None
        ):  # shutdown() would wait forever on a server never started
            self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in separate writes; without this every loopback
            # reply waits ~40 ms for a delayed ACK.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                return  # the journal is the log

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                req = parse_request(self.command, self.path, headers, body)
                server._dispatch(self, req)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

        return Handler

    def _dispatch(self, handler: BaseHTTPRequestHandler, req: SimRequest) -> None:
        try:
            endpoint = self.simulator.endpoint_name(req)
        except Exception:  # noqa: BLE001 - a label is only for faults/journal
            endpoint = f"{req.method} {req.path}"
        fault = self.faults.pick(endpoint)

        def record(status: int | None) -> None:
            self.journal.add(
                JournalEntry(
                    endpoint=endpoint,
                    method=req.method,
                    path=req.path,
                    query=req.query,
                    headers=req.headers,
                    body=req.body,
                    status=status,
                    fault=fault.kind if fault else None,
                    at=time.time(),
                )
            )

        if fault is not None and fault.kind == "drop":
            record(None)
            _drop(handler)
            return
        if fault is not None and fault.kind == "status":
            headers = {"Content-Type": "application/json"}
            if fault.retry_after is not None:
                headers["Retry-After"] = _fmt_retry_after(fault.retry_after)
            body = (
                fault.body
                if fault.body is not None
                else _default_fault_body(fault.status)
            )
            record(fault.status)
            _write(handler, SimResponse(fault.status, body, headers))
            return
        if fault is not None and fault.kind == "delay":
            self._sleep(fault.seconds)
        try:
            resp = self.simulator.handle(req)
        except Exception as exc:  # noqa: BLE001 - a simulator bug must answer, never hang
            resp = SimResponse.json(
                {"message": f"sandbox internal error: {type(exc).__name__}: {exc}"}, 500
            )
        if fault is not None and fault.kind == "lost_response":
            record(None)
            _drop(handler)
            return
        record(resp.status)
        # The client may have given up (e.g. its timeout fired during a delay fault).
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            _write(handler, resp)


def _fmt_retry_after(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


def _default_fault_body(status: int) -> bytes:
    return json.dumps({"message": f"sandbox injected HTTP {status}"}).encode()


def _write(handler: BaseHTTPRequestHandler, resp: SimResponse) -> None:
    handler.send_response(resp.status)
    for key, value in resp.headers.items():
        handler.send_header(key, value)
    handler.send_header("Content-Length", str(len(resp.body)))
    handler.end_headers()
    handler.wfile.write(resp.body)
    handler.wfile.flush()


def _drop(handler: BaseHTTPRequestHandler) -> None:
    """Close the TCP connection without a response (the client sees a reset / EOF)."""
    handler.close_connection = True
    with contextlib.suppress(OSError):
        handler.connection.shutdown(socket.SHUT_RDWR)
