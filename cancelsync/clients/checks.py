"""The result type of ``cancelsync check``'s API probes, shared by both clients."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CheckResult:
    """One probe's outcome.

    ``ok`` False is a failure; ``ok`` True with a ``fix`` is a warning (it works, but
    something should be looked at); ``fix`` says what to change. ``info`` marks a fact
    worth knowing that needs no change (e.g. a status the configured reason has no key
    for: such orders need attention, by design).
    """

    name: str
    ok: bool
    detail: str
    fix: str | None = None
    info: bool = False
