"""RetryPolicy's waits: exponential from ``initial``, jitter added, capped, and never a
library warning (pytest turns warnings into errors; a merchant would see them)."""

from __future__ import annotations

import warnings

import pytest

from cancelsync.clients.http import RetryPolicy
from cancelsync.errors import RetryableApiError


@pytest.mark.parametrize("initial", [0.5, 1.0, 2.0])
def test_waits_double_from_initial_within_the_jitter_and_the_cap(
    initial: float,
) -> None:
    policy = RetryPolicy(initial=initial, maximum=5.0, jitter=0.25)
    error = RetryableApiError("busy")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        waits = [policy.delay(n, error) for n in range(1, 6)]

    for n, wait in enumerate(waits, 1):
        low = min(initial * 2 ** (n - 1), 5.0)
        assert low <= wait <= min(low + 0.25, 5.0), (n, wait)


def test_retry_after_wins_and_is_capped() -> None:
    policy = RetryPolicy(initial=0.5, maximum=2.0)
    error = RetryableApiError("slow down", retry_after=30.0)

    assert policy.delay(1, error) == 2.0
