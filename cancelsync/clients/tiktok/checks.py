"""``cancelsync check`` probes for one TikTok store: credentials, shop, reason, clock.

Each probe returns a ``CheckResult`` that names its fix. ``ok=False`` is a failure;
``ok=True`` with a ``fix`` is a warning (it works, but should be looked at); ``info=True``
is information that needs no change.
"""

from __future__ import annotations

from datetime import datetime

from cancelsync import reasons
from cancelsync.clients.checks import CheckResult
from cancelsync.clients.tiktok import envelope
from cancelsync.clients.tiktok.client import TikTokClient
from cancelsync.clock import Clock
from cancelsync.config import StoreConfig
from cancelsync.errors import ApiError, ConfigError, DataError
from cancelsync.models import TikTokShop
from cancelsync.shops import describe_shop, pick_shop

# TikTok's timestamp window (reference §1): at most 5 min old, at most 30 s ahead.
MAX_AHEAD_SECONDS = 30
MAX_BEHIND_SECONDS = 300
PAID_STATUS = "AWAITING_SHIPMENT"  # ON_HOLD shares its reason table
UNPAID_STATUS = "UNPAID"

CREDENTIALS = "tiktok credentials"
SHOP = "tiktok shop"
REASON = "tiktok cancel reason"
CLOCK = "tiktok clock"


def check_tiktok(
    client: TikTokClient, store_cfg: StoreConfig, *, clock: Clock
) -> list[CheckResult]:
    """Probe TikTok for one store; every result names its fix."""
    try:
        probe = client.probe()
    except (ApiError, DataError) as exc:
        return _probe_failed(exc)
    results = [
        CheckResult(
            CREDENTIALS,
            True,
            f"app key, signature and access token accepted; {len(probe.shops)} "
            "authorized shop(s)",
        )
    ]
    shop: TikTokShop | None = None
    try:
        shop = pick_shop(probe.shops, store_cfg)
    except ConfigError as exc:
        results.append(CheckResult(SHOP, False, "; ".join(exc.errors), fix=_SHOP_FIX))
    else:
        results.append(_shop_result(shop, store_cfg))
    results.append(_reason_result(store_cfg, shop))
    results.append(_clock_result(clock.now(), probe.server_time))
    return results


_SHOP_FIX = "set shop_id to one of the authorized shops (see the detail)"


def _probe_failed(exc: ApiError | DataError) -> list[CheckResult]:
    if isinstance(exc, DataError):
        return [CheckResult(CREDENTIALS, False, str(exc), fix="report this reply")]
    detail = f"{exc.message} (code {exc.code})" if exc.code else exc.message
    results = [CheckResult(CREDENTIALS, False, detail, fix=exc.hint)]
    if exc.code == envelope.INVALID_PARAMS and "timestamp" in exc.message.lower():
        results.append(
            CheckResult(
                CLOCK,
                False,
                "TikTok refused the request timestamp: " + exc.message,
                fix="sync the host clock (NTP); TikTok accepts timestamps at most "
                "5 min old and 30 s ahead",
            )
        )
    return results


def _shop_result(shop: TikTokShop, store_cfg: StoreConfig) -> CheckResult:
    if store_cfg.shop_cipher and store_cfg.shop_cipher != shop.cipher:
        return CheckResult(
            SHOP,
            False,
            f"the configured shop_cipher does not belong to shop {describe_shop(shop)}",
            fix="remove shop_cipher from the store (cancelsync looks it up) or run "
            f"`cancelsync connect --store {store_cfg.name} --auth-code CODE`",
        )
    return CheckResult(SHOP, True, f"shop {describe_shop(shop)}; shop cipher resolved")


def _reason_result(store_cfg: StoreConfig, shop: TikTokShop | None) -> CheckResult:
    cfg = store_cfg.magento_refund_to_tiktok_cancel
    reason = cfg.cancel_reason
    if not cfg.enabled:
        return CheckResult(
            REASON, True, "not used: magento_refund_to_tiktok_cancel is disabled"
        )
    market = reasons.normalize_market(store_cfg.market or (shop.region if shop else ""))
    if market not in reasons.MARKETS:
        return CheckResult(
            REASON,
            True,
            f"no reason table for market {market or '(unknown)'}; {reason!r} "
            "cannot be checked offline",
            fix=f"set market for the store, or check with `cancelsync reasons --store "
            f"{store_cfg.name}`",
        )
    keys = {
        status: reasons.translate_reason(reason, market=market, order_status=status)
        for status in (UNPAID_STATUS, PAID_STATUS)
    }
    found = [f"{status} → {key}" for status, key in keys.items() if key]
    missing = [status for status, key in keys.items() if key is None]
    both = _families_for_both(market)
    fix = (
        f"set stores.magento_refund_to_tiktok_cancel.cancel_reason to a family valid "
        f"for both statuses in {market} ({', '.join(both)}) or a key from "
        f"`cancelsync reasons --store {store_cfg.name}`"
    )
    if len(missing) == len(keys):
        return CheckResult(
            REASON,
            False,
            f"{reason!r} is not a seller cancel reason for market {market}",
            fix=fix,
        )
    if missing:
        # By design, not a misconfiguration (the default family has no UNPAID key): said
        # once, as information; such an order needs attention naming the keys for it.
        paid = " (and ON_HOLD)" if PAID_STATUS in missing else ""
        return CheckResult(
            REASON,
            True,
            f"{'; '.join(found)}; no key for {', '.join(missing)}{paid} orders in "
            f"{market}: such an order needs attention, naming the keys valid for it "
            f"(families with keys for both: {', '.join(both)})",
            info=True,
        )
    if any(key and reasons.is_out_of_stock(key) for key in keys.values()):
        return CheckResult(
            REASON,
            True,
            f"{'; '.join(found)}; an out-of-stock reason sets the SKU's TikTok stock "
            "to 0",
            fix=fix,
        )
    return CheckResult(REASON, True, "; ".join(found))


def _families_for_both(market: str) -> list[str]:
    tables = reasons.REASON_TABLES[market]
    unpaid, paid = tables[reasons.UNPAID], tables[reasons.PAID]
    return [f for f in paid if f in unpaid and f != "out_of_stock"] or sorted(paid)


def _clock_result(local: datetime, server: datetime | None) -> CheckResult:
    if server is None:
        return CheckResult(
            CLOCK,
            True,
            "TikTok sent no Date header; clock skew not measured",
            fix="keep the host clock synced (NTP)",
        )
    skew = (local - server).total_seconds()  # > 0: we are ahead of TikTok
    fix = (
        "sync the host clock (NTP); TikTok refuses timestamps more than 30 s ahead "
        "or 5 min behind"
    )
    if skew > MAX_AHEAD_SECONDS:
        return CheckResult(
            CLOCK, True, f"the host clock is {skew:.0f} s ahead of TikTok's", fix=fix
        )
    if skew < -MAX_BEHIND_SECONDS:
        return CheckResult(
            CLOCK, True, f"the host clock is {-skew:.0f} s behind TikTok's", fix=fix
        )
    return CheckResult(CLOCK, True, f"host clock within {abs(skew):.0f} s of TikTok's")
