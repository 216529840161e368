"""Shared plumbing of the sandbox simulators: request/response types, the request journal,
seeded fault injection and the threaded loopback HTTP front.

A simulator is a plain object with ``handle(SimRequest) -> SimResponse`` that keeps its own
in-memory state (no I/O). ``SimulatorServer`` serves it for real on 127.0.0.1 so that real
HTTP clients (requests, requests-oauthlib, our own clients) talk to it unchanged. Faults that
live at the transport level (status codes, delays, dropped connections, a write applied but its
response lost) are applied here, around ``handle``; faults that live in the data (duplicate
items across pages, out-of-order timestamps, late events) belong to each simulator.

Two behaviours of a real front (nginx + PHP-FPM for Magento, TikTok's gateway) matter when a
client dies or gives up mid-request, and the server keeps them:

- **A request whose body is shorter than its Content-Length is refused with 400 and never
  reaches the simulator.** nginx buffers the whole request body before it passes anything
  upstream (``proxy_request_buffering``/``fastcgi_request_buffering`` on by default) and
  answers 400 when the client closes early (408 after ``client_body_timeout``); PHP never
  runs. Handing the simulator the bytes that did arrive would be wrong in a dangerous way:
  an empty refund body means "refund everything left" to Magento.
- **A slow request still completes after the client went away** (``Fault("delay")``). PHP
  only notices a vanished client when it writes output, and Magento commits a credit memo's
  transaction before it writes the reply; TikTok's gateway has forwarded the call by then.
  So a write the client timed out on, or whose process was killed, may still take effect
  seconds later. The request is authenticated as of its arrival (``SimRequest.received_at``):
  a token that expires during the delay does not undo a call that was already admitted.
  ``SimulatorServer.in_flight`` shows such requests and ``wait_idle`` waits for them, and
  ``stop`` lets them finish (bounded) rather than dropping them.
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

from cancelsync.clock import Clock, SystemClock


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
    # When the server read the request, on the simulator's clock (None: "now", e.g. a
    # direct ``handle`` call). A gateway checks credentials at arrival, not after a delay.
    received_at: datetime | None = None

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


# --------------------------------------------------------------------------- loopback


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listening(port: int) -> bool:
    """Something accepts connections on 127.0.0.1:``port``."""
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_until(
    condition: Callable[[], object], seconds: float, *, step: float = 0.02
) -> bool:
    """Poll ``condition`` until it is true (True) or ``seconds`` pass (False)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return False


# --------------------------------------------------------------------------- faults

FAULT_KINDS = ("status", "delay", "drop", "lost_response")


@dataclass
class Fault:
    """One injected fault.

    kind:
        ``status``: answer ``status`` (e.g. 500, 503, 429) with ``body`` and, when set, a
        ``Retry-After`` header, without touching state.
        ``delay``: sleep ``seconds`` before handling (with a short client timeout this is a
        timeout; the request is still applied afterwards, like a slow server, even when the
        client disconnected or was killed meanwhile: see the module docstring).
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
    method: str,
    target: str,
    headers: dict[str, str],
    body: bytes,
    *,
    received_at: datetime | None = None,
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
        received_at=received_at,
    )


@dataclass(frozen=True)
class InFlight:
    """A request the server is still working on (see ``SimulatorServer.in_flight``)."""

    endpoint: str
    method: str
    fault: str | None  # the injected fault's kind, e.g. "delay" for a slow call
    started: float  # time.monotonic() when the request was read


# How long a request body may take to arrive once its headers are in (nginx's
# client_body_timeout is 60 s): a client that stalls longer is refused like one that died
# (400 here; nginx says 408), never left holding a server thread.
BODY_TIMEOUT_SECONDS = 30.0
_SYSTEM = SystemClock()


class _QuietServer(ThreadingHTTPServer):
    """A client that vanishes (killed, timed out) is normal here, not a server error."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


# How long ``stop`` lets requests in flight (a slow write) finish before closing.
STOP_DRAIN_SECONDS = 10.0


class SimulatorServer:
    """Serves a simulator on loopback in a background thread (ThreadingHTTPServer).

    Usage::

        with SimulatorServer(sim) as server:
            requests.get(server.url + "/rest/V1/modules")

    ``clock`` stamps ``SimRequest.received_at``; by default the simulator's own ``clock``
    attribute (both simulators have one), else the system clock.
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
        clock: Clock | None = None,
    ) -> None:
        self.simulator = simulator
        self.faults = faults or FaultPlan()
        self.journal = journal or Journal()
        self._sleep = sleep
        self._clock = clock
        # Called in the handler thread as each request arrives, with its endpoint label
        # and the fault picked for it, before it is handled (the soak uses it to kill its
        # client at a chosen moment). Exceptions are not caught: keep it small.
        self.on_request: Callable[[SimRequest, str, Fault | None], None] | None = None
        self._in_flight: dict[int, InFlight] = {}
        self._in_flight_lock = threading.Condition()
        self._next_ticket = 0
        self._httpd = _QuietServer((host, port), self._handler_class())
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
        """Stop accepting requests, let those in flight finish (bounded), close."""
        if (
            self._thread is not None
        ):  # shutdown() would wait forever on a server never started
            self._httpd.shutdown()
        self.wait_idle(STOP_DRAIN_SECONDS)
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def in_flight(self) -> list[InFlight]:
        """Requests read but not yet answered (or dropped), oldest first."""
        with self._in_flight_lock:
            return sorted(self._in_flight.values(), key=lambda f: f.started)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no request is in flight (e.g. a slow write still to commit);
        ``False`` when ``timeout`` seconds passed first."""
        deadline = time.monotonic() + timeout
        with self._in_flight_lock:
            while self._in_flight:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._in_flight_lock.wait(left)
        return True

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
                received_at = server._received_now()
                headers = {k.lower(): v for k, v in self.headers.items()}
                body, complete = _read_body(self)
                req = parse_request(
                    self.command, self.path, headers, body, received_at=received_at
                )
                if not complete:
                    server._incomplete(self, req)
                    return
                server._dispatch(self, req)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

        return Handler

    def _received_now(self) -> datetime:
        # Looked up per request: tests may swap ``simulator`` on a running server.
        clock: Clock = self._clock or getattr(self.simulator, "clock", None) or _SYSTEM
        return clock.now()

    def _incomplete(self, handler: BaseHTTPRequestHandler, req: SimRequest) -> None:
        """The body stopped short of its Content-Length: 400, the simulator never sees it
        (see the module docstring)."""
        self.journal.add(
            JournalEntry(
                endpoint=self._endpoint(req),
                method=req.method,
                path=req.path,
                query=req.query,
                headers=req.headers,
                body=req.body,
                status=400,
                fault="incomplete_body",
                at=time.time(),
            )
        )
        handler.close_connection = True  # the stream is out of step: never reuse it
        page = b"<html><head><title>400 Bad Request</title></head></html>"
        with contextlib.suppress(OSError):
            _write(handler, SimResponse(400, page, {"Content-Type": "text/html"}))

    def _endpoint(self, req: SimRequest) -> str:
        try:
            return self.simulator.endpoint_name(req)
        except Exception:  # noqa: BLE001 - a label is only for faults/journal
            return f"{req.method} {req.path}"

    def _dispatch(self, handler: BaseHTTPRequestHandler, req: SimRequest) -> None:
        endpoint = self._endpoint(req)
        fault = self.faults.pick(endpoint)
        with self._in_flight_lock:
            ticket = self._next_ticket
            self._next_ticket += 1
            self._in_flight[ticket] = InFlight(
                endpoint, req.method, fault.kind if fault else None, time.monotonic()
            )
        try:
            if self.on_request is not None:
                self.on_request(req, endpoint, fault)
            self._respond(handler, req, endpoint, fault)
        finally:
            with self._in_flight_lock:
                del self._in_flight[ticket]
                self._in_flight_lock.notify_all()

    def _respond(
        self,
        handler: BaseHTTPRequestHandler,
        req: SimRequest,
        endpoint: str,
        fault: Fault | None,
    ) -> None:
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
            with contextlib.suppress(OSError):
                _write(handler, SimResponse(fault.status, body, headers))
            return
        if fault is not None and fault.kind == "delay":
            # Whatever the client does meanwhile (time out, die), the request goes on.
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
        # The client may have given up (its timeout fired during a delay fault) or died:
        # the request took effect all the same, only the reply has nowhere to go.
        with contextlib.suppress(OSError):
            _write(handler, resp)


def _read_body(handler: BaseHTTPRequestHandler) -> tuple[bytes, bool]:
    """``(body, complete)``: incomplete when fewer bytes than the Content-Length arrived
    (the client died or stalled mid-request) or the length is not a number."""
    raw = handler.headers.get("Content-Length")
    try:
        length = int(raw) if raw else 0
    except ValueError:
        return b"", False
    if length <= 0:
        return b"", length == 0
    handler.connection.settimeout(BODY_TIMEOUT_SECONDS)
    body = b""
    try:
        # read1 returns what arrived so far, so a stalled or closed client still leaves
        # the bytes it did send for the journal.
        while len(body) < length and (chunk := handler.rfile.read1(length - len(body))):
            body += chunk
    except OSError:  # TimeoutError, a reset: the rest of the body did not arrive
        pass
    finally:
        with contextlib.suppress(OSError):
            handler.connection.settimeout(None)
    return body, len(body) == length


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
