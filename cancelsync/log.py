"""Structured logging: configured once at the entry point, always to stderr.

JSON when stderr is not a TTY (journald, cron mail), the console renderer on one;
``worker.log_format`` overrides. ``worker.log_level`` (or ``--log-level``) sets the threshold:
one line per HTTP request is ``debug``, one per action and per store cycle ``info``, and at
``warning`` a run with nothing to do prints nothing (cron mails only when a person is needed). A redaction processor replaces every configured secret value
(and anything under a secret-looking key) wherever it appears in an event, so no token, app
secret or signature is ever printed. The ``Redactor`` is made by the entry point from the
config's secrets and passed in; the client factory adds tokens to it as they arrive. APScheduler's
stdlib logs go through the same processors.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import structlog

REDACTED = "***"
LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
_SECRET_KEYS = re.compile(
    r"(secret|token|password|passwd|(^|_)sign$|signature|authorization|auth_code|"
    r"oauth_|api_key|cookie)",
    re.IGNORECASE,
)
# Keys that merely *mention* tokens but hold no secret (counts, expiries, flags).
_SAFE_KEYS = re.compile(r"(_expire|_expires|_at$|_count$|^has_|_present$|page_token)")


class Redactor:
    """structlog processor removing secrets by value and by key name."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self.add(*secrets)

    def add(self, *secrets: str) -> None:
        """Add secret values (ignoring values too short to be secrets), e.g. rotated tokens."""
        new = {s for s in secrets if s and len(s) >= 4} - self._values
        if new:  # called for every stored token read: recompile only on news
            self._values |= new
            self._compile()

    def _compile(self) -> None:
        # Longest first so a secret containing another is replaced whole.
        values = sorted(self._values, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, values))) if values else None

    def scrub_text(self, text: str) -> str:
        """``text`` with every secret value replaced."""
        return self._pattern.sub(REDACTED, text) if self._pattern else text

    def scrub(self, value: Any, key: str = "") -> Any:
        if key and _SECRET_KEYS.search(key) and not _SAFE_KEYS.search(key):
            return REDACTED if value not in (None, "") else value
        if isinstance(value, str):
            return self.scrub_text(value)
        if isinstance(value, dict):
            return {k: self.scrub(v, str(k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.scrub(v) for v in value]
        if isinstance(value, tuple):
            # A plain tuple, not type(value)(...): namedtuples take positional fields.
            return tuple(self.scrub(v) for v in value)
        if isinstance(value, BaseException):
            return self.scrub(str(value))
        if value is None or isinstance(value, bool | int | float):
            return value
        # Any other object is rendered through its repr (JSON fallback, console): a
        # dataclass or set holding a token would print it, so scrub that text instead.
        text = repr(value)
        if self._pattern is not None and self._pattern.search(text):
            return self.scrub_text(text)
        return value

    def __call__(
        self, logger: Any, method: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        for key in list(event_dict):
            event_dict[key] = self.scrub(event_dict[key], key)
        return event_dict


def _render_exc(logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> Any:
    # Render exception text *before* redaction so tracebacks are scrubbed too.
    return structlog.processors.format_exc_info(logger, method, event_dict)


class _Scrubbed:
    """Wraps the final renderer and scrubs secret values from the text it produces.

    The last line of defence for text made *by* the renderer, after the redaction
    processor ran: the console renderer's tracebacks and the reprs of arbitrary objects.
    """

    def __init__(self, renderer: Any, redactor: Redactor) -> None:
        self._renderer = renderer
        self._redactor = redactor

    def __call__(
        self, logger: Any, method: str, event_dict: MutableMapping[str, Any]
    ) -> Any:
        rendered = self._renderer(logger, method, event_dict)
        return (
            self._redactor.scrub_text(rendered)
            if isinstance(rendered, str)
            else rendered
        )


def configure_logging(
    log_format: str = "auto",
    redactor: Redactor | None = None,
    stream: TextIO | None = None,
    level: int | str = logging.INFO,
) -> None:
    """Configure structlog (and stdlib logging) once, at the entry point.

    ``redactor`` (made from the config's secrets) is used as is, not copied: tokens the
    client factory adds to it later are scrubbed from every line after that. ``level``
    is a ``logging`` level or one of ``LEVELS``' names.
    """
    if isinstance(level, str):
        level = LEVELS[level]
    stream = stream or sys.stderr
    redactor = redactor or Redactor()
    as_json = log_format == "json" or (log_format == "auto" and not stream.isatty())
    renderer: Any = _Scrubbed(
        structlog.processors.JSONRenderer(sort_keys=False)
        if as_json
        else structlog.dev.ConsoleRenderer(colors=stream.isatty()),
        redactor,
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if as_json:
        shared.append(_render_exc)
    shared.append(redactor)
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
    # stdlib loggers (APScheduler, urllib3) through the same processors.
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                renderer,
            ],
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # Other libraries' (urllib3, APScheduler) info and debug lines are noise for a user.
    root.setLevel(max(level, logging.WARNING))
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)
