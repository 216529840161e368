"""The one error tree, split by what the caller must do.

- ``ConfigError``: fix the configuration (exit code 2); carries every problem at once.
- ``ApiError`` and children: something a remote API said or failed to say.
    - ``RetryableApiError``: back off and try again (429, 5xx, timeouts on reads, throttling).
    - ``OutcomeUnknownError``: a *write* that did not succeed and may or may not have taken
      effect (timeout, dropped connection, 5xx, 429 after sending). Never retried blindly: the
      engine reconciles against remote state; ``refused`` says whether the server answered
      "not done" (then it may be sent again in the same run after that re-read).
    - ``AuthError``: refresh the token (``refreshable``) or re-authorize / fix credentials.
    - ``FatalApiError``: a 4xx or business refusal; retrying will not help.
    - ``NotFoundError``: the thing is not there.
- ``DataError``: a payload the mappers could not read.
- ``LockHeldError``: another instance holds the lock (exit code 75).
- ``SetupError``: something on this host the user must fix, not in the config (a folder that
  is not writable, a file of another user, a damaged database): exit code 2, like a bad config.

Messages say how to fix the problem ("Resolution: ...").
"""

from __future__ import annotations

from collections.abc import Sequence


class CancelSyncError(Exception):
    """Base of every error cancelsync raises on purpose."""


class ConfigError(CancelSyncError):
    """The configuration is invalid; ``errors`` lists every problem with its location."""

    def __init__(self, errors: Sequence[str]) -> None:
        self.errors = list(errors)
        super().__init__(
            "invalid configuration:\n" + "\n".join(f"  - {e}" for e in errors)
        )


class LockHeldError(CancelSyncError):
    """Another cancelsync instance is running against the same database."""


class SetupError(CancelSyncError):
    """A path, permission or file on this host the user must fix (exit code 2)."""


class DataError(CancelSyncError):
    """A remote payload did not have the shape the mapper needs."""


class ApiError(CancelSyncError):
    """A remote API call failed.

    Attributes:
        platform: ``"magento"`` or ``"tiktok"``.
        status: the HTTP status, when there was a response.
        code: the platform's own error code (TikTok ``code``), when given.
        request_id: the platform's request id, for support tickets.
        hint: how to fix it, shown after the message.
    """

    def __init__(
        self,
        message: str,
        *,
        platform: str = "",
        status: int | None = None,
        code: int | str | None = None,
        request_id: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.platform = platform
        self.status = status
        self.code = code
        self.request_id = request_id
        self.hint = hint
        super().__init__(self._render())

    @property
    def summary(self) -> str:
        """The message with its status, code and request id, without the resolution:
        for a caller that shows the hint once, on a line of its own (``check``)."""
        parts = [f"{self.platform}: {self.message}" if self.platform else self.message]
        details = []
        if self.status is not None:
            details.append(f"HTTP {self.status}")
        if self.code not in (None, ""):
            details.append(f"code {self.code}")
        if self.request_id:
            details.append(f"request_id {self.request_id}")
        if details:
            parts.append(f"({', '.join(details)})")
        return " ".join(parts)

    def _render(self) -> str:
        text = self.summary
        if self.hint:
            text += f". Resolution: {self.hint}"
        return text


class RetryableApiError(ApiError):
    """Transient: back off and try again. ``retry_after`` is the server's hint in seconds."""

    def __init__(
        self, message: str, *, retry_after: float | None = None, **kw: object
    ) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kw)  # type: ignore[arg-type]


class OutcomeUnknownError(ApiError):
    """A write was sent but its outcome is unknown; reconcile before sending it again.

    Attributes:
        refused: the server *answered* that it did not act (HTTP 429, 500, 503; TikTok
            36009002, 36009003, 10006402, or 25001028 "reverse lock failed"), or the
            request never left this host. Once a re-read finds the effect missing, the
            write may be sent again in the same run. ``False`` for a timeout, a dropped
            connection, a cut-off reply or a gateway 502/504 (and TikTok's 36009007): the
            server may still be working on it, so it is not sent again before
            ``settle_seconds`` plus a margin have passed and a re-read says it is missing.
        retry_after: the server's ``Retry-After`` in seconds, when it sent one.
        settle_seconds: how long the server may still be acting on it (the client's
            timeout), when known.
    """

    def __init__(
        self,
        message: str,
        *,
        refused: bool = False,
        retry_after: float | None = None,
        settle_seconds: float | None = None,
        **kw: object,
    ) -> None:
        self.refused = refused
        self.retry_after = retry_after
        self.settle_seconds = settle_seconds
        super().__init__(message, **kw)  # type: ignore[arg-type]


class AuthError(ApiError):
    """Credentials were refused. ``refreshable`` means a token refresh may fix it."""

    def __init__(
        self, message: str, *, refreshable: bool = False, **kw: object
    ) -> None:
        self.refreshable = refreshable
        super().__init__(message, **kw)  # type: ignore[arg-type]


class FatalApiError(ApiError):
    """The platform refused the request for a reason retrying cannot fix."""


class NotFoundError(FatalApiError):
    """The requested entity does not exist."""


class ConfigApiError(FatalApiError):
    """The platform says our configuration is wrong (bad reason key, missing scope, ...)."""


class AlreadyAppliedError(FatalApiError):
    """The platform says the effect already exists (nothing left to refund, order already
    cancelled or a cancellation already in progress). The engine re-reads before trusting it."""


class NotCancellableError(FatalApiError):
    """TikTok will not cancel this order any more (shipped, risk control, lines locked).

    The merchant has to handle it as a return/refund in Seller Center; never retried.
    """
