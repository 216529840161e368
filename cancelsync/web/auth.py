"""Who may use the order center: the token, sessions, CSRF tokens and the sign-in throttle.

- Scripts send ``Authorization: Bearer <worker.web_token>``; the comparison takes constant
  time.
- People sign in once with the same token and get a session: a random id in a cookie,
  signed with a key made when the process starts (a restart signs everyone out), kept in
  memory with an absolute expiry and its own CSRF token.
- Failed sign-ins and bearer tokens are counted per client and in all: past the limit,
  attempts are refused without being checked until the window has passed.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta

from cancelsync.clock import Clock

SESSION_COOKIE = "cancelsync_session"
LOGIN_COOKIE = "cancelsync_login"  # the sign-in form's CSRF value (double submit)
SESSION_LIFETIME = timedelta(hours=8)
LOGIN_FORM_LIFETIME = timedelta(minutes=30)
MAX_SESSIONS = 1000


def token_matches(given: str | None, expected: str) -> bool:
    """Constant-time comparison of a presented token with the configured one."""
    if not given:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, else ``None``."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None


def new_nonce() -> str:
    """A fresh random value for a session id or a CSRF token."""
    return secrets.token_urlsafe(32)


def same_secret(a: str | None, b: str | None) -> bool:
    """Constant-time equality of two random values (CSRF tokens); empty never matches."""
    return bool(a) and bool(b) and hmac.compare_digest(str(a), str(b))


@dataclass
class Session:
    session_id: str
    csrf: str
    expires_at: datetime
    flash: str | None = None

    def pop_flash(self) -> str | None:
        text, self.flash = self.flash, None
        return text


class Sessions:
    """Signed-in browsers, in memory; cookie values are ``<id>.<HMAC of the id>``."""

    def __init__(self, clock: Clock, lifetime: timedelta = SESSION_LIFETIME) -> None:
        self._clock = clock
        self._lifetime = lifetime
        self._key = secrets.token_bytes(32)  # per process: never stored, never shown
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    @property
    def lifetime(self) -> timedelta:
        return self._lifetime

    def sign(self, value: str) -> str:
        mac = hmac.new(self._key, value.encode(), hashlib.sha256).hexdigest()
        return f"{value}.{mac}"

    def unsign(self, signed: str | None) -> str | None:
        """The value of a signed cookie, or ``None`` when the signature is wrong."""
        value = (signed or "").rpartition(".")[0]
        if not value or not same_secret(self.sign(value), signed):
            return None
        return value

    def create(self) -> tuple[str, Session]:
        """A new session and the cookie value that names it."""
        now = self._clock.now()
        session = Session(new_nonce(), new_nonce(), now + self._lifetime)
        with self._lock:
            self._drop_expired(now)
            while len(self._sessions) >= MAX_SESSIONS:  # oldest first (insertion order)
                del self._sessions[next(iter(self._sessions))]
            self._sessions[session.session_id] = session
        return self.sign(session.session_id), session

    def get(self, cookie: str | None) -> Session | None:
        session_id = self.unsign(cookie)
        if session_id is None:
            return None
        with self._lock:
            session = self._sessions.get(session_id)
            if session is not None and session.expires_at <= self._clock.now():
                del self._sessions[session_id]
                return None
            return session

    def drop(self, cookie: str | None) -> None:
        session_id = self.unsign(cookie)
        if session_id is not None:
            with self._lock:
                self._sessions.pop(session_id, None)

    def _drop_expired(self, now: datetime) -> None:
        for sid in [s for s, v in self._sessions.items() if v.expires_at <= now]:
            del self._sessions[sid]


class Throttle:
    """Failed authentications per client and in all, over a sliding window.

    Args:
        per_client: failures one client may make per window.
        overall: failures all clients together may make per window (a proxy in front
            can make every client look alike; this still caps the guessing rate).
    """

    def __init__(
        self,
        clock: Clock,
        *,
        per_client: int = 5,
        overall: int = 30,
        window: timedelta = timedelta(minutes=1),
    ) -> None:
        self._clock = clock
        self._per_client = per_client
        self._overall = overall
        self._window = window
        self._failures: dict[str, deque[datetime]] = {}
        self._all: deque[datetime] = deque()
        self._lock = threading.Lock()

    def wait_seconds(self, client: str) -> int:
        """0 when ``client`` may try now, else how many seconds until it may."""
        now = self._clock.now()
        with self._lock:
            self._expire(now)
            mine = self._failures.get(client, deque())
            waits = [
                times[0] + self._window - now
                for times, limit in (
                    (mine, self._per_client),
                    (self._all, self._overall),
                )
                if len(times) >= limit
            ]
        return max((max(1, math.ceil(w.total_seconds())) for w in waits), default=0)

    def failed(self, client: str) -> int:
        """Count a failure; returns the client's failures in the window."""
        now = self._clock.now()
        with self._lock:
            self._expire(now)
            mine = self._failures.setdefault(client, deque())
            mine.append(now)
            self._all.append(now)
            return len(mine)

    def _expire(self, now: datetime) -> None:
        start = now - self._window
        while self._all and self._all[0] <= start:
            self._all.popleft()
        for client in list(self._failures):
            times = self._failures[client]
            while times and times[0] <= start:
                times.popleft()
            if not times:
                del self._failures[client]
