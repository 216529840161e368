"""``cancelsync webhooks subscribe``: point a shop's TikTok webhooks at this worker.

Subscribes both event types the worker reacts to (order status and cancellation status
changes) to the merchant's public HTTPS URL, which their reverse proxy forwards to
``worker.webhook_listen``. TikTok requires HTTPS; plain http is accepted only for a
loopback host (the sandbox).
"""

from __future__ import annotations

from contextlib import closing
from typing import TextIO
from urllib.parse import urlsplit

from cancelsync.config import Config
from cancelsync.config.model import is_loopback
from cancelsync.errors import ConfigError
from cancelsync.log import Redactor
from cancelsync.webhooks import PATH

EVENT_TYPES = ("ORDER_STATUS_CHANGE", "CANCELLATION_STATUS_CHANGE")


def check_url(url: str) -> str | None:
    """Why ``url`` cannot receive TikTok webhooks, or None."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if (parts.scheme == "https" and host) or (
        parts.scheme == "http" and host and is_loopback(host)
    ):
        pass
    else:
        return f"{url!r}: TikTok delivers only to an https:// URL"
    if len(url) > 255:
        return f"{url!r}: TikTok takes at most 255 characters"
    if not parts.path.endswith(PATH):
        return (
            f"{url!r}: the worker listens at {PATH}; give the public URL that your "
            f"proxy forwards there (…{PATH})"
        )
    return None


def subscribe(
    config: Config, out: TextIO, *, redactor: Redactor, store_name: str, url: str
) -> int:
    """Subscribe one store's shop; exit 0, or raise for the CLI's exit codes."""
    from cancelsync import commands

    problem = check_url(url)
    if problem is not None:
        raise ConfigError([f"webhooks subscribe --url: {problem}"])
    cfg = config.store(store_name)
    with (
        closing(commands.open_store(config)) as store,
        commands._client_factory(config, store, redactor) as clients,
        clients.tiktok(cfg) as tt,
    ):
        shop = clients.resolve_shop(cfg, tt)
        for event_type in EVENT_TYPES:
            tt.api.subscribe_webhook(url, event_type)
    print(
        f"store {cfg.name}: TikTok shop {shop.tiktok_shop_id} now sends "
        f"{' and '.join(EVENT_TYPES)} to {url}",
        file=out,
    )
    if not config.worker.webhook_listen:
        print(
            "note: worker.webhook_listen is not set, so the service is not listening "
            "yet; set it (e.g. 127.0.0.1:8787) and point your proxy at it",
            file=out,
        )
    return 0
