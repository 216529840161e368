"""``cancelsync check`` beyond validation: reach both APIs and say how to fix what fails.

Exit 0 when every probe passes (warnings and information allowed), 1 when any fails.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import TextIO

from cancelsync.clients.checks import (
    CheckResult,
    credential_length_fix,
    magento_credential_lengths,
)
from cancelsync.clients.magento.checks import CREDENTIALS, check_magento
from cancelsync.clients.tiktok.checks import check_tiktok
from cancelsync.config import StoreConfig
from cancelsync.errors import ApiError, CancelSyncError, ConfigError, DataError
from cancelsync.models import TikTokOrder
from cancelsync.wiring import ClientFactory, TikTokClients


def _print(section: str, results: list[CheckResult], out: TextIO) -> bool:
    print(section, file=out)
    ok = True
    for r in results:
        if not r.ok:
            mark = "FAIL"
        elif r.info:
            mark = "info"
        else:
            mark = "warn" if r.fix else "ok  "
        print(f"  [{mark}] {r.name}: {r.detail}", file=out)
        if r.fix:
            print(f"         fix: {r.fix}", file=out)
        ok = ok and r.ok
    return ok


def run_online_checks(clients: ClientFactory, out: TextIO) -> int:
    """Probe Magento, then every enabled store's TikTok shop; print each result."""
    config = clients.config
    all_ok = _print(
        f"magento ({config.magento.base_url}, auth {config.magento.auth}):",
        _blame_lengths(
            check_magento(clients.magento, auth_mode=config.magento.auth),
            magento_credential_lengths(config.magento),
        ),
        out,
    )
    for cfg in config.stores:
        if not cfg.enabled:
            print(f"tiktok store {cfg.name}: disabled, not checked", file=out)
            continue
        all_ok &= _print(f"tiktok store {cfg.name}:", _check_store(clients, cfg), out)
    print(
        "all checks passed" if all_ok else "some checks failed (see fix: lines)",
        file=out,
    )
    return 0 if all_ok else 1


def _blame_lengths(
    results: list[CheckResult], problems: list[str]
) -> list[CheckResult]:
    """A refused credentials probe with a credential of the wrong length: that length is
    the one hint (Magento answers a short token with a 400 that looks like anything)."""
    if not problems:
        return results
    return [
        replace(r, fix=credential_length_fix(problems))
        if r.name == CREDENTIALS and not r.ok
        else r
        for r in results
    ]


def _check_store(clients: ClientFactory, cfg: StoreConfig) -> list[CheckResult]:
    with clients.tiktok(cfg) as tt:
        try:
            results = check_tiktok(tt.api, cfg, clock=clients.clock)
        except ApiError as exc:
            return [CheckResult("tiktok", False, exc.summary, fix=exc.hint)]
        except CancelSyncError as exc:
            return [CheckResult("tiktok", False, str(exc), fix=None)]
        if all(r.ok for r in results):
            results.append(_imported_result(clients, cfg, tt))
        return results


IMPORTED = "orders.imported"
# How far back, and how many, recent TikTok orders are looked up in Magento.
IMPORT_PROBE_DAYS = 7
IMPORT_PROBE_ORDERS = 10
# Unpaid orders are often not imported (yet): compare the ones an importer must have.
_IMPORTED_STATUSES = frozenset(
    {"AWAITING_SHIPMENT", "AWAITING_COLLECTION", "IN_TRANSIT", "DELIVERED", "COMPLETED"}
)


def _imported_result(
    clients: ClientFactory, cfg: StoreConfig, tt: TikTokClients
) -> CheckResult:
    """Do recent TikTok orders show up in Magento under ``tiktok_order_id_field``?

    A wrong field name makes every cancellation "never imported": nothing is refunded
    and nothing fails, so this is the one place it can be caught before it matters.
    """
    field = clients.config.magento.tiktok_order_id_field
    fix = (
        f"set magento.tiktok_order_id_field to the sales_order column where your "
        f"importer stores the TikTok order id (now {field!r}), or check that the "
        "importer brings this shop's orders into Magento"
    )
    try:
        clients.resolve_shop(cfg, tt)
        since = clients.clock.now() - timedelta(days=IMPORT_PROBE_DAYS)
        recent: list[TikTokOrder] = next(
            iter(tt.api.search_orders(update_time_ge=since, page_size=50)), []
        )
        ids = [o.tiktok_order_id for o in recent if o.status in _IMPORTED_STATUSES][
            :IMPORT_PROBE_ORDERS
        ]
        if not ids:
            return CheckResult(
                IMPORTED, True, f"no paid TikTok order in the last {IMPORT_PROBE_DAYS} "
                "days to look up in Magento", info=True,
            )  # fmt: skip
        found = clients.magento.orders_by_tiktok_ids(ids)
    except ApiError as exc:
        return CheckResult(
            IMPORTED, False, f"could not compare orders: {exc.summary}", fix=exc.hint
        )
    except (DataError, ConfigError) as exc:
        return CheckResult(
            IMPORTED, False, f"could not compare orders: {exc}", fix=None
        )
    store_ids = set(cfg.magento_store_ids)
    hits = sum(
        1
        for oid in ids
        if any(not store_ids or o.store_id in store_ids for o in found.get(oid, []))
    )
    detail = (
        f"{hits} of the {len(ids)} most recent paid TikTok orders found in Magento "
        f"by {field!r}"
    )
    if hits == len(ids):
        return CheckResult(IMPORTED, True, detail)
    if hits == 0:
        return CheckResult(IMPORTED, False, detail, fix=fix)
    return CheckResult(
        IMPORTED, True, detail + " (the importer may lag behind)", fix=fix
    )
