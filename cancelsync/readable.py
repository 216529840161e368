"""Times and order numbers as people read them, shared by ``status`` and ``explain``.

Stored times are ISO 8601 UTC text or Unix seconds; a person gets
``2026-11-30 05:36:10 UTC (3 minutes ago)`` (``in 2 hours`` for a time still to come).
A Magento order is always ``#<increment id>``, as the Magento admin shows it.
"""

from __future__ import annotations

from datetime import UTC, datetime

When = str | int | float | datetime | None

_UNITS = (("day", 86_400), ("hour", 3_600), ("minute", 60), ("second", 1))


def to_datetime(value: When) -> datetime | None:
    """An aware UTC datetime from stored ISO text, Unix seconds or a datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        when = value
    elif isinstance(value, int | float):
        when = datetime.fromtimestamp(value, UTC)
    else:
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


def iso_utc(value: When) -> str | None:
    """``2026-11-30 05:36:10 UTC``; ``None`` when there is no time."""
    when = to_datetime(value)
    return None if when is None else when.strftime("%Y-%m-%d %H:%M:%S UTC")


def relative(value: When, now: datetime) -> str:
    """``3 minutes ago``, ``in 2 hours`` or ``just now`` (whole units, rounded down)."""
    when = to_datetime(value)
    if when is None:
        return "never"
    seconds = int((now - when).total_seconds())
    if seconds == 0:
        return "just now"
    size = abs(seconds)
    name, unit = next((n, u) for n, u in _UNITS if size >= u)
    count = size // unit
    text = f"{count} {name}{'' if count == 1 else 's'}"
    return f"{text} ago" if seconds > 0 else f"in {text}"


def when(value: When, now: datetime, *, missing: str = "never") -> str:
    """``2026-11-30 05:36:10 UTC (3 minutes ago)``; ``missing`` when there is no time."""
    text = iso_utc(value)
    if text is None:
        return missing
    return f"{text} ({relative(value, now)})"


def magento_order(increment_id: str | None) -> str:
    """``#000000042``, or ``-`` when the order is not known."""
    return f"#{increment_id}" if increment_id else "-"
