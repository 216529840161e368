"""``run --once --since TIME``: when a backfill starts re-reading.

TIME is an ISO date (``2026-11-01``, midnight UTC), an ISO date-time (UTC unless it carries
an offset) or a span back from now (``90m``, ``2h``, ``3d``, ``1w``). It may lie at most
``MAX_SINCE_DAYS`` back (TikTok keeps searchable cancellations for a limited time, and a
longer re-read is a job for the merchant's support, not a cron line) and never in the future.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta

MAX_SINCE_DAYS = 90
_SPAN = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str, now: datetime) -> datetime:
    """The aware UTC datetime ``text`` names, checked against ``now``.

    Raises:
        ValueError: unreadable, in the future, or more than ``MAX_SINCE_DAYS`` back;
            the message says what is accepted.
    """
    span = _SPAN.match(text)
    if span:
        since = now - timedelta(**{_UNITS[span.group(2)]: int(span.group(1))})
    else:
        since = _absolute(text)
    if since > now:
        raise ValueError(f"{text!r} is in the future; give a time in the past")
    if since < now - timedelta(days=MAX_SINCE_DAYS):
        raise ValueError(
            f"{text!r} is more than {MAX_SINCE_DAYS} days back; re-read at most "
            f"{MAX_SINCE_DAYS} days (e.g. --since {MAX_SINCE_DAYS}d)"
        )
    return since


def _absolute(text: str) -> datetime:
    value = text.strip()
    try:
        if len(value) == 10:  # a date alone: from its midnight, UTC
            return datetime.combine(date.fromisoformat(value), time(), UTC)
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time: give an ISO date (2026-11-01), date-time "
            "(2026-11-01T08:00, UTC unless it has an offset) or a span back from now "
            "(90m, 2h, 3d, 1w)"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
