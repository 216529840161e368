"""Shared HTTP transport for both clients: session, timeouts, TLS, rate limit, retries, logs.

HTTP lives in ``cancelsync.clients`` and nowhere else. Each client owns one ``Transport``
(one ``requests.Session``) injected with its base URL, timeout, TLS setting and auth; there
are no module-level clients. Every call:

- waits for the client's token bucket (so a backlog never floods an API);
- carries ``timeout`` and ``verify``;
- is logged as one ``http.request`` event at debug level (method, path, status, duration,
  request id), never with query values, headers or bodies (they may hold secrets);
- goes through one declared tenacity policy that retries only ``RetryableApiError``, with
  exponential backoff and jitter, a cap, and the server's ``Retry-After`` when present;
- is reported, attempt by attempt, to the ``RequestObserver`` of the calling context, if
  any (``observe_requests``: the service's metrics), so clients stay free of metrics code.

**The transport never sends a write twice.** Any transient failure of a write raises
``OutcomeUnknownError`` for the engine, which re-reads the remote state and re-sends through
its ledger (so every send is counted before it goes out). The error's ``refused`` flag says
whether the server answered "not done" (HTTP 429/500/503, TikTok 36009002/36009003/10006402,
25001028 "reverse lock failed") or the request never left this host: then the engine may
re-send in the same run under this same ``RetryPolicy``. A timeout, a dropped connection, a
cut-off reply or a gateway 502/504 is not refused: the server may still be working on it.
"""

from __future__ import annotations

import random
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests
import structlog
import urllib3.exceptions
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
)

from cancelsync.errors import ApiError, OutcomeUnknownError, RetryableApiError

log = structlog.get_logger("cancelsync.http")

RaiseForResponse = Callable[[requests.Response], None]


@dataclass(frozen=True)
class RequestOutcome:
    """One attempt as an observer hears it: never the URL, query, headers or body.

    ``error`` is the class name of the ``ApiError`` the attempt raised (``None``: it
    succeeded); ``status`` the HTTP status when there was a response.
    """

    platform: str
    method: str
    status: int | None
    error: str | None
    duration_seconds: float


RequestObserver = Callable[[RequestOutcome], None]
# Per context (thread), not global: the worker sets it around its own cycles only.
_observer: ContextVar[RequestObserver | None] = ContextVar(
    "cancelsync_request_observer", default=None
)


@contextmanager
def observe_requests(observer: RequestObserver | None) -> Iterator[None]:
    """Report every attempt sent in this context to ``observer`` (``None``: nothing)."""
    token = _observer.set(observer)
    try:
        yield
    finally:
        _observer.reset(token)


def _notify(
    platform: str, method: str, status: int | None, error: str | None, started: float
) -> None:
    observer = _observer.get()
    if observer is None:
        return
    outcome = RequestOutcome(
        platform, method, status, error, time.monotonic() - started
    )
    try:
        observer(outcome)
    except Exception:  # an observer's bug must never fail a request
        log.warning("http.observer_failed", platform=platform, exc_info=True)


def check_and_pace(
    limiter: TokenBucket | None,
    check: Callable[[], None],
    *,
    throttling: Callable[[RetryableApiError], bool],
) -> None:
    """Run a client's response ``check`` and tell its ``limiter`` what the answer says:
    a throttling refusal (``throttling``) slows it down; any other answer, accepted or
    refused for its content, speeds it up again; other retryable errors (5xx, a dropped
    connection) say nothing about the rate."""
    try:
        check()
    except RetryableApiError as exc:
        if limiter is not None and throttling(exc):
            limiter.throttled()
        raise
    except ApiError:
        if limiter is not None:
            limiter.succeeded()  # refused for its content, not for the rate
        raise
    if limiter is not None:
        limiter.succeeded()


class TokenBucket:
    """A thread-safe token bucket: ``rate`` requests per second, bursts up to ``capacity``.

    The rate adapts (AIMD) between ``floor`` and the configured ``ceiling``: the client
    calls ``throttled`` when the server answers "too many requests" (HTTP 429, TikTok
    36009002), which halves the rate (once per second at most: the other requests already
    in flight meet the same limit) and drops the saved-up burst; each ``succeeded``
    request adds ``ceiling / 10`` requests per second, spread over a second's worth of
    requests, so the rate climbs back to the ceiling within about ten seconds. The rate
    never exceeds the configured one.
    """

    def __init__(
        self,
        rate: float,
        capacity: float | None = None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.ceiling = rate
        self.floor = min(rate, 0.5)
        self.capacity = capacity if capacity is not None else max(1.0, rate)
        self._tokens = self.capacity
        self._monotonic = monotonic
        self._sleep = sleep
        self._last = monotonic()
        self._lock = threading.Lock()
        self._slowed_at: float | None = None

    def throttled(self) -> None:
        """The server said "too many requests": halve the rate (multiplicative decrease)."""
        with self._lock:
            now = self._monotonic()
            if self._slowed_at is not None and now - self._slowed_at < 1.0:
                return
            self._slowed_at = now
            self._refill(now)
            self.rate = max(self.floor, self.rate / 2)
            self._tokens = min(self._tokens, 0.0)
        log.warning("http.rate_lowered", requests_per_second=round(self.rate, 2))

    def succeeded(self) -> None:
        """A request got through: raise the rate back towards the ceiling (additive)."""
        if self.rate >= self.ceiling:
            return
        with self._lock:
            self._refill(self._monotonic())
            step = max(1.0, self.ceiling / 10) / self.rate
            self.rate = min(self.ceiling, self.rate + step)

    def _refill(self, now: float) -> None:
        """Credit the tokens earned since the last look at the current rate."""
        self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
        self._last = now

    def acquire(self) -> float:
        """Take one token, sleeping until one is available; return the time waited."""
        with self._lock:
            now = self._monotonic()
            self._refill(now)
            if self._tokens >= 1:
                self._tokens -= 1
                return 0.0
            wait = (1 - self._tokens) / self.rate
            self._tokens = 0.0
            self._last = now + wait
        self._sleep(wait)
        return wait


@dataclass(frozen=True)
class RetryPolicy:
    """The one retry policy: retryable errors only, exponential backoff with jitter, capped.

    ``sleep`` is injectable so tests never wait.
    """

    attempts: int = 5
    initial: float = 1.0
    maximum: float = 60.0
    jitter: float = 1.0
    sleep: Callable[[float], None] = time.sleep

    def wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RetryableApiError | OutcomeUnknownError) and (
            exc.retry_after is not None
        ):
            return min(max(exc.retry_after, 0.0), self.maximum)
        # wait_exponential_jitter's formula, scaled by ``initial``: tenacity 9.2
        # deprecates its ``initial`` (for ``multiplier``, which 9.1 lacks), and a
        # warning must never reach a merchant's terminal.
        exponent = max(state.attempt_number - 1, 0)
        backoff = self.initial * 2.0**exponent + random.uniform(0, self.jitter)
        return float(min(backoff, self.maximum))

    def delay(self, attempt_number: int, error: BaseException | None) -> float:
        """The wait after failed attempt ``attempt_number`` (1-based), as ``wait`` computes
        it: the server's ``Retry-After`` when ``error`` carries one, else backoff + jitter.

        The engine uses it to re-send a refused write in the same run.
        """
        state = RetryCallState(self.retrying("engine"), fn=None, args=(), kwargs={})
        state.attempt_number = attempt_number
        if error is not None:
            state.set_exception((type(error), error, error.__traceback__))
        return self.wait(state)

    def retrying(self, platform: str) -> Retrying:
        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            log.warning(
                "http.retry",
                platform=platform,
                attempt=state.attempt_number,
                sleep_seconds=round(state.upcoming_sleep, 2),
                error=str(exc),
            )

        return Retrying(
            retry=retry_if_exception_type(RetryableApiError),
            stop=stop_after_attempt(self.attempts),
            wait=self.wait,
            sleep=self.sleep,
            before_sleep=before_sleep,
            reraise=True,
        )


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


class Transport:
    """One ``requests.Session`` bound to a base URL, with timeout, TLS, auth and limits."""

    def __init__(
        self,
        session: requests.Session,
        *,
        platform: str,
        base_url: str,
        timeout: float,
        verify: bool = True,
        auth: requests.auth.AuthBase | None = None,
        rate_limiter: TokenBucket | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        if timeout is None or timeout <= 0:
            raise ValueError("a positive timeout is mandatory")
        self.session = session
        self.platform = platform
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.verify = verify
        self.auth = auth
        self.rate_limiter = rate_limiter
        self.retry = retry or RetryPolicy()

    def request(
        self,
        method: str,
        path: str,
        raise_for_response: RaiseForResponse,
        *,
        params: Mapping[str, Any] | list[tuple[str, Any]] | str | None = None,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        write: bool = False,
        base_url: str | None = None,
        prepare: Callable[[], tuple[Any, bytes | None, Mapping[str, str]]]
        | None = None,
        log_path: str | None = None,
    ) -> requests.Response:
        """Send one request through the retry policy and return the successful response.

        Args:
            raise_for_response: the client's mapper from a response to its error classes.
            write: the call changes remote state; unknown outcomes raise
                ``OutcomeUnknownError`` instead of being retried.
            prepare: called before *each* attempt to rebuild ``(params, data, headers)``
                (TikTok signs each attempt with a fresh timestamp).
            log_path: the path to log (e.g. with ids templated out); defaults to ``path``.
        """
        for attempt in self.retry.retrying(self.platform):
            with attempt:
                if prepare is not None:
                    params, data, headers = prepare()
                started = time.monotonic()
                try:
                    resp = self._send(
                        method, path, raise_for_response, params=params, data=data,
                        headers=headers, write=write, base_url=base_url,
                        log_path=log_path or path,
                    )  # fmt: skip
                except ApiError as exc:
                    _notify(self.platform, method, exc.status, type(exc).__name__,
                            started)  # fmt: skip
                    raise
                _notify(self.platform, method, resp.status_code, None, started)
                return resp
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

    def _send(
        self,
        method: str,
        path: str,
        raise_for_response: RaiseForResponse,
        *,
        params: Any,
        data: bytes | None,
        headers: Mapping[str, str] | None,
        write: bool,
        base_url: str | None,
        log_path: str,
    ) -> requests.Response:
        if self.rate_limiter is not None:
            self.rate_limiter.acquire()
        url = (base_url or self.base_url) + path
        started = time.monotonic()
        try:
            resp = self.session.request(
                method, url, params=params, data=data, headers=dict(headers or {}),
                auth=self.auth, timeout=self.timeout, verify=self.verify,
            )  # fmt: skip
        except requests.exceptions.ConnectionError as exc:
            duration = time.monotonic() - started
            never_sent = _never_reached_server(exc)
            why = unreachable(exc, url, self.platform, self.timeout)
            self._log(method, log_path, None, duration, None, error=type(exc).__name__)
            if write and not never_sent:
                raise OutcomeUnknownError(
                    f"connection lost during {method} {log_path} ({why.message}); the "
                    "write may have been applied",
                    platform=self.platform,
                    settle_seconds=self.timeout,
                    hint=_RECONCILE_HINT,
                ) from exc
            if write:
                raise OutcomeUnknownError(
                    f"{why.message}; the write was not sent",
                    platform=self.platform,
                    refused=True,
                    hint=why.hint,
                ) from exc
            raise RetryableApiError(
                why.message, platform=self.platform, hint=why.hint
            ) from exc
        except requests.exceptions.Timeout as exc:
            duration = time.monotonic() - started
            why = unreachable(exc, url, self.platform, self.timeout)
            self._log(method, log_path, None, duration, None, error="Timeout")
            if write:
                raise OutcomeUnknownError(
                    f"{method} {log_path}: {why.message}; the write may have been "
                    "applied",
                    platform=self.platform,
                    settle_seconds=self.timeout,
                    hint=_RECONCILE_HINT,
                ) from exc
            raise RetryableApiError(
                f"{method} {log_path}: {why.message}",
                platform=self.platform,
                hint=why.hint,
            ) from exc
        except (
            requests.exceptions.ChunkedEncodingError,
            requests.exceptions.ContentDecodingError,
        ) as exc:
            # The server answered (so a write reached it) but the body broke mid-read.
            duration = time.monotonic() - started
            self._log(method, log_path, None, duration, None, error=type(exc).__name__)
            if write:
                raise OutcomeUnknownError(
                    f"the reply to {method} {log_path} was cut off; the write may have "
                    "been applied",
                    platform=self.platform,
                    settle_seconds=self.timeout,
                    hint=_RECONCILE_HINT,
                ) from exc
            raise RetryableApiError(
                f"the reply to {method} {log_path} was cut off ({type(exc).__name__})",
                platform=self.platform,
            ) from exc
        except requests.exceptions.RequestException as exc:
            raise ApiError(
                f"{method} {log_path} could not be sent: {type(exc).__name__}",
                platform=self.platform,
            ) from exc
        duration = time.monotonic() - started
        request_id = resp.headers.get("x-tt-logid") or resp.headers.get("X-Request-Id")
        try:
            raise_for_response(resp)
        except RetryableApiError as exc:
            self._log(
                method,
                log_path,
                resp.status_code,
                duration,
                exc.request_id or request_id,
            )
            # Never re-sent here, not even a 429: the engine re-reads first and counts
            # every send in its ledger before it goes out.
            if write:
                refused = _refused(exc)
                raise OutcomeUnknownError(
                    exc.message,
                    platform=exc.platform,
                    status=exc.status,
                    code=exc.code,
                    request_id=exc.request_id,
                    refused=refused,
                    retry_after=exc.retry_after,
                    settle_seconds=None if refused else self.timeout,
                    hint=_RECONCILE_HINT,
                ) from exc
            raise
        except ApiError as exc:
            self._log(
                method,
                log_path,
                resp.status_code,
                duration,
                exc.request_id or request_id,
            )
            raise
        self._log(method, log_path, resp.status_code, duration, request_id)
        return resp

    def _log(
        self,
        method: str,
        path: str,
        status: int | None,
        duration: float,
        request_id: str | None,
        error: str | None = None,
    ) -> None:
        log.debug(
            "http.request",
            platform=self.platform,
            method=method,
            path=path,
            status=status,
            duration_ms=round(duration * 1000, 1),
            request_id=request_id,
            **({"error": error} if error else {}),
        )


_RECONCILE_HINT = "cancelsync re-reads the remote state before trying again"

# Answers that say the server finished handling a write without doing it. TikTok codes:
# 36009002 throttled, 36009003 and 10006402 internal error "please try again", 25001028
# "reverse lock failed" (a lock conflict: retry-safety UNCONFIRMED, so it is only re-sent
# after a re-read shows the order still not cancelled).
_REFUSED_STATUSES = frozenset({429, 500, 503})
_REFUSED_CODES = frozenset({"36009002", "36009003", "10006402", "25001028"})
# Gateway timeouts: the server behind may still be working on the request.
_STILL_WORKING_STATUSES = frozenset({502, 504})
_STILL_WORKING_CODES = frozenset({"36009007"})


def _refused(exc: RetryableApiError) -> bool:
    """A transient answer to a write that says "not done" (see ``_REFUSED_STATUSES``);
    anything else transient (502/504, TikTok 36009007, other 5xx) is "maybe done"."""
    if exc.status in _STILL_WORKING_STATUSES or str(exc.code) in _STILL_WORKING_CODES:
        return False
    return exc.status in _REFUSED_STATUSES or str(exc.code) in _REFUSED_CODES


def _never_reached_server(exc: requests.exceptions.ConnectionError) -> bool:
    """True when the connection was never established (so nothing was sent)."""
    text = repr(exc)
    return (
        any(
            marker in text
            for marker in (
                "NewConnectionError",
                "Connection refused",
                "Name or service not known",
                "nodename nor servname",
                "Failed to resolve",
            )
        )
        and "RemoteDisconnected" not in text
    )


# --------------------------------------------------------------------------- unreachable

# The config keys a merchant edits for each platform's host, timeout and TLS setting.
_KEYS = {
    "magento": ("magento.base_url", "magento.timeout_seconds", "magento.verify_tls"),
    "tiktok": (
        "tiktok.api_base_url (or auth_base_url)",
        "tiktok.timeout_seconds",
        "tiktok.verify_tls",
    ),
    "alert_webhook": ("worker.alert_webhook_url", "the timeout", "TLS verification"),
}


@dataclass(frozen=True)
class Unreachable:
    """Why a host could not be talked to, in words: which kind, where, and the fix.

    ``kind``: ``connection refused``, ``DNS failure``, ``TLS error``, ``timeout`` or
    ``connection dropped``; ``message`` names it and the host:port; ``hint`` is one
    line saying what to change.
    """

    kind: str
    message: str
    hint: str


def unreachable(
    exc: requests.exceptions.RequestException,
    url: str,
    platform: str,
    timeout: float,
) -> Unreachable:
    """Tell a refused connection, a name that does not resolve, a TLS failure and a
    timeout apart (``requests`` calls them all ``ConnectionError`` or ``Timeout``)."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        port = 0
    where = f"{host}:{port}"
    url_key, timeout_key, tls_key = _KEYS.get(
        platform, (f"{platform}'s URL", "the timeout", "TLS verification")
    )
    chain = _causes(exc)
    tls = [e for e in chain if isinstance(e, ssl.SSLError)]
    if tls or isinstance(exc, requests.exceptions.SSLError):
        cert = next(
            (e for e in tls if isinstance(e, ssl.SSLCertVerificationError)), None
        )
        if cert is not None:
            why = cert.verify_message or "not trusted"
            return Unreachable(
                "TLS error",
                f"TLS error with {where}: its certificate was refused ({why})",
                f"give {host} a certificate from a public CA (with its intermediate "
                f"chain) for that name, or point REQUESTS_CA_BUNDLE at your own CA; "
                f"{tls_key} = false only on a test store",
            )
        reason = next((e.reason for e in tls if getattr(e, "reason", None)), None)
        return Unreachable(
            "TLS error",
            f"TLS error with {where}: the handshake failed"
            + (f" ({reason})" if reason else ""),
            f"{where} may not speak HTTPS (a plain-HTTP port?): use http:// or the "
            f"HTTPS port in {url_key}",
        )
    if any(
        isinstance(e, urllib3.exceptions.NameResolutionError | socket.gaierror)
        for e in chain
    ):
        return Unreachable(
            "DNS failure",
            f"cannot reach {where}: DNS failure, the name {host} was not resolved",
            f"check the host name in {url_key} for a typo, and that this machine's DNS "
            f"resolves it (`getent hosts {host}`)",
        )
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return Unreachable(
            "connection refused",
            f"cannot reach {where}: connection refused (nothing listens on that port)",
            f"check the port in {url_key} and that the web server (or its proxy) is "
            "running and reachable from this machine",
        )
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return Unreachable(
            "timeout",
            f"timeout: {where} did not accept a connection within {timeout:g}s",
            f"a firewall may drop the packets: check {url_key} and that this machine "
            "may connect to that host and port",
        )
    if isinstance(exc, requests.exceptions.Timeout):
        return Unreachable(
            "timeout",
            f"timeout: {where} accepted the connection but sent no answer within "
            f"{timeout:g}s",
            f"raise {timeout_key} if the API is slow, or check the server at {where} "
            "is not stuck",
        )
    return Unreachable(
        "connection dropped",
        f"cannot reach {where}: the connection was dropped "
        f"({type(chain[-1]).__name__})",
        f"check {url_key} and that the service at {where} is up",
    )


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and what it wraps: urllib3's ``reason``, ``args``, causes and contexts."""
    found: list[BaseException] = []
    todo: list[object] = [exc]
    while todo and len(found) < 32:
        item = todo.pop(0)
        if not isinstance(item, BaseException) or any(item is e for e in found):
            continue
        found.append(item)
        todo += [getattr(item, "reason", None), *item.args]
        todo += [item.__cause__, item.__context__]
    return found
