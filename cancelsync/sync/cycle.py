"""One sync cycle for one store: retries due, then direction B, then direction A.

A failure of one store (expired authorization, API down) is recorded in its cycle history and
reported; it never stops the other stores. Inside a store, one event's failure is that event's
(``Engine.event_scope``): a due retry that fails again stays in the ledger for later and the
cycle goes on. Listing pages (memo and cancellation search) failing still ends the store's
cycle, with its cursors untouched.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from cancelsync.clients.http import RetryPolicy
from cancelsync.clock import Clock, to_epoch
from cancelsync.config import StoreConfig, WorkerConfig
from cancelsync.cycle_history import finish_cycle
from cancelsync.directions import Direction
from cancelsync.errors import ApiError, CancelSyncError
from cancelsync.store import Store
from cancelsync.sync.engine import (
    DEFAULT_WRITE_TIMEOUT_SECONDS,
    CycleReport,
    Engine,
    Event,
    StopRequested,
)
from cancelsync.sync.magento_to_tiktok import MagentoToTikTok
from cancelsync.sync.ports import MagentoPort, TikTokPort
from cancelsync.sync.tiktok_to_magento import TikTokToMagento


@dataclass(frozen=True)
class ShopContext:
    """The TikTok shop a store is bound to (resolved before the cycle)."""

    tiktok_shop_id: str
    market: str
    scope: str


def _never() -> bool:
    return False


@dataclass(frozen=True)
class StoreRun:
    """What one store's cycle (or ``resync``) runs with: the store's config and shop,
    the clients, and how. The service and the CLI build one; ``engine`` and the two
    directions are made from it the same way for a cycle and a resync.

    ``retry``: the policy refused writes are re-sent under; by default the TikTok
    client's own (the transport's), so reads and writes share one policy.
    """

    store: Store
    cfg: StoreConfig
    worker: WorkerConfig
    shop: ShopContext
    magento: MagentoPort
    tiktok: TikTokPort
    clock: Clock
    run_id: str
    dry_run: bool = False
    other_stores_claim: bool = False
    should_stop: Callable[[], bool] = _never
    retry: RetryPolicy | None = None
    write_timeout_seconds: float = DEFAULT_WRITE_TIMEOUT_SECONDS

    def engine(self) -> Engine:
        """A new engine with its report (``engine.report``), started now."""
        report = CycleReport(self.cfg.name, self.shop.scope, self.run_id,
                             self.clock.now(), dry_run=self.dry_run)  # fmt: skip
        return Engine(
            store=self.store, cfg=self.cfg, worker=self.worker, scope=self.shop.scope,
            clock=self.clock, report=report, dry_run=self.dry_run,
            should_stop=self.should_stop,
            retry=self.retry or getattr(self.tiktok, "retry_policy", None),
            write_timeout_seconds=self.write_timeout_seconds,
        )  # fmt: skip

    def tiktok_to_magento(self, engine: Engine) -> TikTokToMagento:
        return TikTokToMagento(engine, shop_id=self.shop.tiktok_shop_id,
                               magento=self.magento, tiktok=self.tiktok)  # fmt: skip

    def magento_to_tiktok(self, engine: Engine) -> MagentoToTikTok:
        return MagentoToTikTok(
            engine, shop_id=self.shop.tiktok_shop_id, market=self.shop.market,
            magento=self.magento, tiktok=self.tiktok,
            other_stores_claim=self.other_stores_claim,
        )  # fmt: skip


def run_store_cycle(run: StoreRun, *, since: datetime | None = None) -> CycleReport:
    """Run one cycle and record it; never raises for API trouble (it is in the report).

    ``since``: a backfill (``run --once --since``): both directions re-read from then.
    """
    store, cfg, clock, dry_run = run.store, run.cfg, run.clock, run.dry_run
    engine = run.engine()
    report = engine.report
    b, a = run.tiktok_to_magento(engine), run.magento_to_tiktok(engine)
    started = time.monotonic()
    try:
        # Whatever ends the cycle, the actions in flight finish and are recorded first.
        with engine.flights.closing():
            if not dry_run:
                _retry_due(engine, a, b)
            _run_directions(cfg, a, b, since)
    except StopRequested:
        report.counts["stopped_early"] += 1
        engine.log.info("cycle.stopped", reason="stop requested")
    except (ApiError, CancelSyncError) as exc:
        report.error = str(exc)
        engine.log.error(  # noqa: TRY400 - expected API trouble: no traceback
            "cycle.store_failed", error=str(exc), error_type=type(exc).__name__
        )
    finish_cycle(store, report, clock.now())
    engine.log.info(
        "cycle.finished", outcome=report.outcome, dry_run=dry_run,
        duration_ms=round((time.monotonic() - started) * 1000, 1),
        new_attention=report.new_attention, failures=report.failures,
        **{f"n_{k}": v for k, v in sorted(report.counts.items())},
    )  # fmt: skip
    return report


def _retry_due(engine: Engine, a: MagentoToTikTok, b: TikTokToMagento) -> None:
    """Re-drive the ledger rows whose next attempt has come, each in its own event scope;
    rows of a direction that is now off wait until it is on again."""
    cfg = engine.cfg
    for entry in engine.store.ledger.due(engine.scope, engine.clock.now()):
        engine.check_stop()
        payload = entry.payload_dict()
        event = Event.of(entry)
        engine.wait_for(event.ids)  # a row of an order whose action is in flight waits
        with engine.event_scope(event):
            if entry.direction == Direction.TIKTOK_TO_MAGENTO:
                if cfg.tiktok_cancel_to_magento_refund.enabled:
                    b.retry(payload)
            elif (
                entry.direction == Direction.MAGENTO_TO_TIKTOK
                and cfg.magento_refund_to_tiktok_cancel.enabled
            ):
                a.retry(payload)
    engine.drain()


def _run_directions(
    cfg: StoreConfig, a: MagentoToTikTok, b: TikTokToMagento, since: datetime | None
) -> None:
    """Direction B, then A; a direction that is off is noted, so that switching it back
    on starts fresh."""
    if cfg.tiktok_cancel_to_magento_refund.enabled:
        b.run(None if since is None else to_epoch(since))
    else:
        b.note_disabled()
    if cfg.magento_refund_to_tiktok_cancel.enabled:
        a.run(since)
        a.close_superseded()
    else:
        a.note_disabled()
