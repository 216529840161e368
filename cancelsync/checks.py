"""``cancelsync check`` beyond validation: reach both APIs and say how to fix what fails.

Exit 0 when every probe passes (warnings and information allowed), 1 when any fails.
"""

from __future__ import annotations

from typing import TextIO

from cancelsync.clients.checks import CheckResult
from cancelsync.clients.magento.checks import check_magento
from cancelsync.clients.tiktok.checks import check_tiktok
from cancelsync.config import StoreConfig
from cancelsync.errors import CancelSyncError
from cancelsync.wiring import ClientFactory


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
        check_magento(clients.magento, auth_mode=config.magento.auth),
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


def _check_store(clients: ClientFactory, cfg: StoreConfig) -> list[CheckResult]:
    with clients.tiktok(cfg) as tt:
        try:
            return check_tiktok(tt.api, cfg, clock=clients.clock)
        except CancelSyncError as exc:
            return [CheckResult("tiktok", False, str(exc), fix=None)]
