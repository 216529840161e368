"""The alert webhook: one JSON POST ``{"text": ...}`` (Slack, Mattermost, Teams workflows,
Discord's ``/slack`` endpoint, ...).

It goes through a ``Transport`` like every HTTP call (session, mandatory timeout, TLS), with
no transport-level retries: the alerter decides what is tried again and when, so that a
dead webhook costs a cycle at most one timeout. The URL carries the hook's token, so it is
never logged: the transport logs the path as ``/<webhook>``, and its error messages name
only that and the platform (``alert_webhook``).
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit, urlunsplit

import requests

from cancelsync.clients.http import RetryPolicy, Transport, parse_retry_after
from cancelsync.errors import FatalApiError, RetryableApiError

PLATFORM = "alert_webhook"
LOG_PATH = "/<webhook>"


class WebhookClient:
    """Posts one message to the webhook at ``url``; raises ``ApiError`` on failure.

    ``RetryableApiError`` with a ``status`` (HTTP 429, 5xx) means "try again"; without
    one, the hook did not answer (timeout, connection refused); ``FatalApiError`` means
    the hook refused the message for good (another 4xx).
    """

    def __init__(
        self,
        session: requests.Session,
        url: str,
        *,
        timeout: float,
        verify: bool = True,
    ) -> None:
        parts = urlsplit(url)
        # The path is sent as given (the transport strips a base URL's trailing slash).
        self._path = urlunsplit(("", "", parts.path or "/", parts.query, ""))
        self._transport = Transport(
            session, platform=PLATFORM, base_url=f"{parts.scheme}://{parts.netloc}",
            timeout=timeout, verify=verify, retry=RetryPolicy(attempts=1),
        )  # fmt: skip

    @property
    def timeout(self) -> float:
        return self._transport.timeout

    def post(self, text: str) -> None:
        """Send ``{"text": text}``; returns once the hook answered 2xx."""
        self._transport.request(
            "POST", self._path, raise_for_response,
            data=json.dumps({"text": text}).encode(),
            headers={"Content-Type": "application/json"}, log_path=LOG_PATH,
        )  # fmt: skip

    def close(self) -> None:
        """Drop idle connections (the client stays usable: a later post reconnects)."""
        self._transport.session.close()


def raise_for_response(resp: requests.Response) -> None:
    """2xx is delivered; 429 and 5xx are worth another try; any other answer is final."""
    if 200 <= resp.status_code < 300:
        return
    said = " ".join(resp.text.split())[:120]
    message = f"the webhook answered HTTP {resp.status_code}" + (
        f": {said}" if said else ""
    )
    if resp.status_code == 429 or resp.status_code >= 500:
        raise RetryableApiError(
            message, platform=PLATFORM, status=resp.status_code,
            retry_after=parse_retry_after(resp.headers.get("Retry-After")),
        )  # fmt: skip
    raise FatalApiError(
        message, platform=PLATFORM, status=resp.status_code,
        hint="check worker.alert_webhook_url (a deleted or mistyped hook answers 4xx)",
    )  # fmt: skip
