"""Error codes of the TikTok Shop simulator and the exception that carries them.

Codes come from reference §5.7 and §6; a handler raises ``ApiError`` and the simulator
turns it into the usual ``{"code", "message", "request_id", "data"}`` envelope.
``TRY_AGAIN`` (10006402) is not in the reference: it was seen on order detail in production
(issue 8) and a third-party copy of docv2's Get Package Detail error table lists it as
"Internal error. Retry request" (**UNCONFIRMED** beyond that).
"""

from __future__ import annotations

# common (reference §6)
INVALID_ACCESS_TOKEN = 101000
ACCESS_TOKEN_EXPIRED = 105002
SCOPE_NOT_GRANTED = 105005
INVALID_SIGN = 106001
SHOP_CIPHER_MISSING = 106013
REFRESH_TOKEN_EXPIRED = 36004001
INVALID_AUTH_CODE = 36004004
TOO_MANY_REQUESTS = 36009002
INTERNAL_ERROR = 36009003
INVALID_PARAM = 36009004
REQUEST_TIMED_OUT = 36009007
BAD_PATH = 36009009
BAD_METHOD = 36009010
BAD_VERSION = 36009014
BAD_BODY = 36009022
BAD_CONTENT_TYPE = 36009023
TRY_AGAIN = 10006402  # "Internal error. Please try again" (see the module docstring)

# cancel order (reference §5.7)
CANCEL_INVALID_PARAM = 25001001
CANCEL_IN_PROGRESS = 25001011
UNKNOWN_REASON = 25001014
REASON_NOT_FOR_SELLER = 25001015
REASON_RETIRED = 25001020
REASON_STATUS_MISMATCH = 25001021
REVERSE_LOCK_FAILED = 25001028
ALREADY_SHIPPED = 25001045
COMPLETED_OR_CANCELLED = 25001051
LINES_NOT_CANCELLABLE = 25005010
TOO_MANY_LINES = 25005011


class ApiError(Exception):
    """A TikTok error reply: platform ``code``, ``message`` and its HTTP status."""

    def __init__(
        self,
        code: int,
        message: str,
        *,
        http_status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.http_status = http_status
        self.headers = headers or {}


def invalid_param(message: str) -> ApiError:
    """The catch-all 36009004 (bad app_key, timestamp, shop_cipher, parameters...)."""
    return ApiError(INVALID_PARAM, f"Invalid parameters: {message}")
