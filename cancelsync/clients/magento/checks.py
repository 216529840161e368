"""``cancelsync check`` probes for Magento: credentials, a date-filtered search, read
grants, the TikTok id column and restock capability. Each probe is a cheap read;
nothing is written.

The date-filtered search is the query shape ``run`` depends on (direction A's
``created_at gteq 'YYYY-MM-DD HH:MM:SS'``): its value holds a space, which Magento
verifies from the raw query with ``rawurldecode``. A plain ``pageSize`` probe can pass
while every dated query is refused with "The signature is invalid", so ``check``
sends one under the configured auth.

The misleading 401 is told apart here: ``The consumer isn't authorized to access
%resources.`` means a missing ACL grant with OAuth 1.0a, but with a bearer token it
usually means the store ignores integration tokens as bearer tokens (2.4.4+ flag off),
in which case *every* call fails, not just one.
"""

from __future__ import annotations

from datetime import timedelta

from cancelsync.clients.checks import CheckResult
from cancelsync.clients.magento.client import MagentoClient
from cancelsync.clients.magento.errors import (
    BEARER_HINT,
    OAUTH1_SIGNATURE_HINT,
    ROUTE_HINT,
    MagentoAuthError,
)
from cancelsync.clients.magento.search import SearchCriteria
from cancelsync.clock import Clock, SystemClock
from cancelsync.errors import ApiError, AuthError, DataError, NotFoundError

WRITE_GRANTS = (
    "Magento_Sales::creditmemo (refund), Magento_Sales::comment (comments), "
    "Magento_Sales::cancel (cancel)"
)
REACH_FIX = "check magento.base_url, the network/firewall and magento.verify_tls"
BEARER_CREDENTIALS_FIX = (
    "check magento.token against the integration's access token (System > Extensions > "
    "Integrations)"
)
SERVER_FIX = (
    "Magento answered with a server error: see var/log/exception.log and var/report/ "
    "on the Magento server"
)


def _api_fix(exc: ApiError, answered: str) -> str:
    """One hint for a failed probe: the error's own (it knows the kind of failure);
    else the network when nothing answered; else ``answered`` (a 5xx: Magento's logs)."""
    if exc.hint:
        return exc.hint
    if exc.status is None:
        return REACH_FIX
    return SERVER_FIX if exc.status >= 500 else answered


def check_magento(
    client: MagentoClient, *, auth_mode: str, clock: Clock | None = None
) -> list[CheckResult]:
    """Probe the store; stop after the credentials probe when it fails."""
    credentials = _credentials(client, auth_mode)
    if not credentials.ok:
        return [credentials]
    return [
        credentials,
        _date_filter(client, auth_mode, clock or SystemClock()),
        _orders(client),
        _restock(client),
    ]


def _grant_fix(resources: tuple[str, ...], fallback: str) -> str:
    if not resources:
        return fallback
    return (
        f"grant the integration these API resources: {', '.join(resources)} "
        "(System > Extensions > Integrations > Edit > API), then save and "
        "re-authorize it"
    )


CREDENTIALS = "magento.credentials"


def _credentials(client: MagentoClient, auth_mode: str) -> CheckResult:
    name = CREDENTIALS
    try:
        _, total = client.search("creditmemos", SearchCriteria().page(1))
    except MagentoAuthError as exc:
        if auth_mode != "bearer":
            return CheckResult(name, False, f"oauth1 refused: {exc.message}", exc.hint)
        # Tell the bearer-flag 401 from a real missing grant: with the flag off the
        # token is anonymous, so an unrelated read (orders) fails the same way.
        try:
            client.search("orders", SearchCriteria().page(1))
        except AuthError:
            return CheckResult(
                name,
                False,
                f"bearer token refused on every read ({exc.message}); this is usually "
                "the 2.4.4+ bearer setting, not a missing grant",
                BEARER_HINT,
            )
        except ApiError:
            pass
        return CheckResult(
            name,
            False,
            f"bearer token accepted but credit memos refused: {exc.message}",
            _grant_fix(exc.resources or ("Magento_Sales::sales_creditmemo",), ""),
        )
    except NotFoundError as exc:
        return CheckResult(
            name, False, f"credit memo search not found: {exc.summary}", ROUTE_HINT
        )
    except ApiError as exc:
        answered = (
            BEARER_CREDENTIALS_FIX if auth_mode == "bearer" else OAUTH1_SIGNATURE_HINT
        )
        return CheckResult(
            name,
            False,
            f"cannot read credit memos: {exc.summary}",
            _api_fix(exc, answered),
        )
    except DataError as exc:
        return CheckResult(name, False, f"unexpected reply: {exc}", ROUTE_HINT)
    seen = "?" if total is None else str(total)
    return CheckResult(
        name,
        True,
        f"{auth_mode} credentials accepted; {seen} credit memos readable. The write "
        f"grants ({WRITE_GRANTS}) cannot be verified without writing",
    )


def _date_filter(client: MagentoClient, auth_mode: str, clock: Clock) -> CheckResult:
    name = "magento.date_filter"
    since = clock.now() - timedelta(hours=1)
    criteria = SearchCriteria().where("created_at", since, "gteq").page(1)
    try:
        client.search("creditmemos", criteria)
    except MagentoAuthError as exc:
        fix = exc.hint
        if auth_mode == "oauth1":
            fix = (
                "something between cancelsync and Magento rewrites the query string "
                "(cancelsync sends a space as %20; Magento verifies the raw query and "
                "reads '+' as a plus): check proxies, WAFs and URL rewrites in front "
                "of the store"
            )
        return CheckResult(
            name,
            False,
            f"a created_at-filtered credit memo search was refused ({exc.message}) "
            "although a plain one passed; `run` sends such searches",
            fix,
        )
    except ApiError as exc:
        return CheckResult(
            name,
            False,
            f"cannot filter credit memos on created_at: {exc.summary}",
            _api_fix(exc, ROUTE_HINT),
        )
    except DataError as exc:
        return CheckResult(name, False, f"unexpected reply: {exc}", ROUTE_HINT)
    return CheckResult(
        name,
        True,
        f"a created_at-filtered search (the query `run` sends) passes {auth_mode}",
    )


def _orders(client: MagentoClient) -> CheckResult:
    name = "magento.orders"
    column = client.tiktok_order_id_field
    criteria = SearchCriteria().where(column, "", "notnull").page(1)
    try:
        _, total = client.search("orders", criteria)
    except MagentoAuthError as exc:
        return CheckResult(
            name,
            False,
            f"orders refused: {exc.message}",
            _grant_fix(exc.resources or ("Magento_Sales::actions_view",), ""),
        )
    except NotFoundError as exc:
        return CheckResult(
            name, False, f"order search not found: {exc.summary}", ROUTE_HINT
        )
    except ApiError as exc:
        if exc.status == 400:
            return CheckResult(
                name,
                False,
                f"cannot filter orders on {column!r}: {exc.message}",
                "set magento.tiktok_order_id_field to the sales_order column where the "
                "importer stores the TikTok order id",
            )
        return CheckResult(
            name, False, f"cannot read orders: {exc.summary}", _api_fix(exc, ROUTE_HINT)
        )
    except DataError as exc:
        return CheckResult(name, False, f"unexpected reply: {exc}", ROUTE_HINT)
    if total == 0:
        return CheckResult(
            name,
            True,
            f"orders readable, but no order has a TikTok id in {column!r} yet",
            "check magento.tiktok_order_id_field names the column the importer fills",
        )
    seen = "?" if total is None else str(total)
    return CheckResult(name, True, f"orders readable; {seen} have {column!r} set")


def _restock(client: MagentoClient) -> CheckResult:
    name = "magento.restock"
    try:
        modules = client.list_modules()
    except (AuthError, ApiError, DataError) as exc:
        why = exc.summary if isinstance(exc, ApiError) else str(exc)
        return CheckResult(
            name,
            True,
            f"cannot list modules to detect MSI ({why}); restock still works",
            "grant Magento_Backend::admin to the integration so cancelsync can tell "
            "MSI from legacy inventory (detection only, not needed to sync)",
        )
    if MagentoClient.has_msi(modules):
        return CheckResult(
            name,
            True,
            "MSI enabled: only the listed return_to_stock_items go back to stock "
            "(cancelsync lists the child simple and its parent); unlisted unshipped "
            "qty is written off, unshipped qty only restores salable qty",
        )
    return CheckResult(
        name,
        True,
        "legacy CatalogInventory: listed items (or their parents) go back to stock",
    )
